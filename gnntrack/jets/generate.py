"""Boosted top jets and QCD jets from Pythia 8 and FastJet, as the public top-tagging sample was made.

    jets, truth, stats = generate_jets("top", 1000, seed=1, workers=2, detector="towers")

- Events: pp at 14 TeV without multiple parton interactions or pileup (as the public sample). Signal: ttbar (`Top:gg2ttbar`, `Top:qqbar2ttbar`) with every W decaying
  to quarks, so both tops decay hadronically; background: QCD 2 -> 2 (`HardQCD:all`). Both in a
  pT-hat window equal to the jet pT range (550-650 GeV: a wider one costs more events per jet).
- Jets: anti-kT R = 0.8 (FastJet's array interface, all events of a batch at once) on the visible
  final-state particles (`truth`: all but neutrinos) or on the tracks and towers of
  gnntrack.jets.towers (`towers`); the leading jet of an event is kept if 550 < pT < 650 GeV and
  |eta| < 2. A top jet is kept only if one hadronically decaying top (its decaying copy, whose
  daughters are the W and the b) and its three decay quarks (the b and the W's two quarks) all lie
  within Delta R < 0.8 of the jet.
- Workers: one Pythia instance per worker, created inside the worker (Pythia objects do not
  pickle, and each worker's initialisation overlaps the others'); worker w of W draws its own share
  of the jets from seeds derived from (seed, process, w), so the same (seed, workers) give the same
  jets in the same order.
Pythia's `nextBatch` returns a batch of events as one Awkward array, so no Python code loops over
particles. Units: GeV.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterator

import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.jets.towers import Particles, TowerDetector, pt_eta_phi, tower_response
from gnntrack.jets.formats import concatenate_jets, take_jets
from gnntrack.jets.preprocess import wrap_phi
from gnntrack.jets.types import BACKGROUND, SIGNAL, JetArrays

PROCESSES = {
    # both W bosons to quarks (d u s c b): every top decays hadronically
    "top": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
    "qcd": ("HardQCD:all = on",),
}
DETECTORS = ("truth", "towers")
PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts seeds 1 ... 900 000 000
NEUTRINOS = (12, 14, 16)
MAX_CONSTITUENTS = 200  # as the public top-tagging files


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """What is generated and which jets are kept (GeV)."""

    process: str = "top"
    detector: str = "towers"
    pt_hat_min: float = 550.0
    pt_hat_max: float = 650.0
    radius: float = 0.8
    jet_pt_min: float = 550.0
    jet_pt_max: float = 650.0
    jet_eta_max: float = 2.0
    match_radius: float = 0.8
    max_constituents: int = MAX_CONSTITUENTS
    batch_events: int = 200  # events per nextBatch call (fewer when few jets remain)
    give_up_events: int = 5000  # events without a single kept jet after which the cuts are hopeless
    towers: TowerDetector = TowerDetector()

    def validate(self) -> "GenerationConfig":
        if self.process not in PROCESSES:
            raise ConfigError(f"process must be one of {sorted(PROCESSES)} (got {self.process!r})")
        if self.detector not in DETECTORS:
            raise ConfigError(f"detector must be one of {list(DETECTORS)} (got {self.detector!r})")
        if not 0 <= self.pt_hat_min < self.pt_hat_max:
            raise ConfigError(f"the pT-hat window must satisfy 0 <= min < max (got {self.pt_hat_min}, "
                              f"{self.pt_hat_max})")
        return self


@dataclasses.dataclass
class Truth:
    """Per-jet truth kept beside the JetArrays: the matched top's (E, px, py, pz) (zeros for QCD)."""

    top: np.ndarray  # float32 [J, 4]


def pythia_settings(config: GenerationConfig, seed: int) -> list[str]:
    """The Pythia settings of one worker: the process, 14 TeV, the pT-hat window, quiet, `seed`."""
    return ["Print:quiet = on", "Next:numberCount = 0", "Beams:eCM = 14000.",
            "PartonLevel:MPI = off",  # as the public top-tagging sample: no MPI, no pileup
            *PROCESSES[config.process],
            f"PhaseSpace:pTHatMin = {config.pt_hat_min}", f"PhaseSpace:pTHatMax = {config.pt_hat_max}",
            "Random:setSeed = on", f"Random:seed = {seed}"]


def worker_seeds(seed: int, process: str, workers: int) -> list[tuple[int, int]]:
    """(Pythia seed, numpy seed) of each worker, derived from (seed, process, worker)."""
    out = []
    for w in range(workers):
        a, b = np.random.SeedSequence([seed, sorted(PROCESSES).index(process), w]).generate_state(2)
        out.append((1 + int(a) % PYTHIA_SEED_MAX, int(b)))
    return out


def shares(n: int, workers: int) -> list[int]:
    """`n` jets split over `workers` as evenly as possible (the first ones take the remainder)."""
    return [n // workers + (w < n % workers) for w in range(workers)]


# ---------------------------------------------------------------- a batch of events as flat arrays


@dataclasses.dataclass
class EventBatch:
    """All particles of B events, flat. Mother/daughter indices are made global (into the flat
    arrays); -1 where Pythia has none. p: float64 [N, 4] (px, py, pz, E); offsets: int64 [B + 1]."""

    pid: np.ndarray
    status: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    p: np.ndarray
    event: np.ndarray
    offsets: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.offsets.size - 1)


def event_batch(events) -> EventBatch:
    """Flattens Pythia's `nextBatch` Awkward array (fields prt.id, .status, .daughter1/2, .p)."""
    import awkward as ak

    prt = events["prt"]
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    event = np.repeat(np.arange(counts.size), counts)
    flat = lambda field: ak.to_numpy(ak.flatten(field))  # noqa: E731
    p = np.stack([flat(prt["p", c]) for c in ("px", "py", "pz", "e")], axis=1)
    d1, d2 = flat(prt["daughter1"]).astype(np.int64), flat(prt["daughter2"]).astype(np.int64)
    d2 = np.where(d2 > 0, d2, d1)  # Pythia writes a single daughter as (d, d) or (d, 0)
    base = offsets[:-1][event]
    return EventBatch(flat(prt["id"]).astype(np.int64), flat(prt["status"]).astype(np.int64),
                      np.where(d1 > 0, d1 + base, -1), np.where(d1 > 0, d2 + base, -1), p, event, offsets)


def visible_particles(batch: EventBatch, charge: Callable[[np.ndarray], np.ndarray]) -> Particles:
    """Final-state particles except neutrinos; `charge(pid)` gives each particle's charge."""
    keep = (batch.status > 0) & ~np.isin(np.abs(batch.pid), NEUTRINOS)
    return Particles(batch.event[keep], batch.p[keep], charge(batch.pid[keep]) != 0)


def charge_table(particle_data) -> Callable[[np.ndarray], np.ndarray]:
    """charge(pid [N]) -> float [N] from Pythia's ParticleData, looked up once per distinct id."""
    cache: dict[int, float] = {}

    def charge(pid: np.ndarray) -> np.ndarray:
        ids, inverse = np.unique(pid, return_inverse=True)
        values = np.array([cache.setdefault(int(i), float(particle_data.charge(int(i)))) for i in ids])
        return values[inverse] if ids.size else np.zeros(0)

    return charge


# ---------------------------------------------------------------- clustering and truth matching


@contextlib.contextmanager
def stdout_fd_silenced() -> Iterator[None]:
    """Sends file descriptor 1 to /dev/null in the block: FastJet prints its banner from C++ on
    the first clustering of a process, and its Python binding cannot switch it off."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_BANNER_SHOWN = False


def leading_jets(particles: Particles, n_events: int, radius: float, pt_floor: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anti-kT jets of every event of a batch at once; the leading one per event.

    Returns:
      jet: float64 [B, 4] (px, py, pz, E) of each event's leading jet (zeros if it has no jet
        above pt_floor);
      members: int64 [M], indices into `particles` of the leading jets' constituents, by event;
      counts: int64 [B], constituents of each leading jet.
    """
    global _BANNER_SHOWN
    import awkward as ak
    import fastjet

    counts = np.bincount(particles.event, minlength=n_events)
    p = particles.p
    records = ak.zip({"px": p[:, 0], "py": p[:, 1], "pz": p[:, 2], "E": p[:, 3]})
    with stdout_fd_silenced() if not _BANNER_SHOWN else contextlib.nullcontext():
        sequence = fastjet.ClusterSequence(ak.unflatten(records, counts),
                                           fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
        jets = sequence.inclusive_jets(min_pt=pt_floor)
        _BANNER_SHOWN = True
    index = sequence.constituent_index(min_pt=pt_floor)
    n_jets = ak.to_numpy(ak.num(jets)).astype(np.int64)
    flat = np.stack([ak.to_numpy(ak.flatten(jets[c])) for c in ("px", "py", "pz", "E")], axis=1)
    jet_event = np.repeat(np.arange(n_events), n_jets)
    order = np.lexsort((-np.hypot(flat[:, 0], flat[:, 1]), jet_event))
    first = order[np.r_[True, jet_event[order][1:] != jet_event[order][:-1]]] if order.size else order
    jet = np.zeros((n_events, 4))
    jet[jet_event[first]] = flat[first]
    chosen = ak.flatten(index, axis=1)[first]
    local = ak.to_numpy(ak.flatten(chosen)).astype(np.int64)
    member_counts = np.zeros(n_events, np.int64)
    member_counts[jet_event[first]] = ak.to_numpy(ak.num(chosen))
    starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    members = local + np.repeat(starts, member_counts)
    return jet, members, member_counts


def hadronic_tops(batch: EventBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decaying copy of every top of the batch that decays to b W, W -> q q'.

    Returns (event int64 [T], top float64 [T, 4], quarks float64 [T, 3, 4]: b, q, q')."""
    pid = np.abs(batch.pid)
    d1, d2 = batch.daughter1, batch.daughter2
    first = np.where(d1 >= 0, d1, 0)
    tops = np.nonzero((pid == 6) & (d1 >= 0) & (pid[first] != 6))[0]
    a, b = d1[tops], d2[tops]
    w = np.where(pid[a] == 24, a, b)
    bq = np.where(pid[a] == 24, b, a)
    for _ in range(100):  # follow the W's copies (recoils in the shower) down to its decay
        nxt = d1[w]
        copy = (nxt >= 0) & (d1[w] == d2[w]) & (pid[np.maximum(nxt, 0)] == 24)
        if not copy.any():
            break
        w = np.where(copy, nxt, w)
    q1, q2 = d1[w], d2[w]
    ok = (pid[w] == 24) & (pid[bq] == 5) & (q1 >= 0) & (pid[np.maximum(q1, 0)] <= 5) & (pid[np.maximum(q2, 0)] <= 5)
    tops, bq, q1, q2 = tops[ok], bq[ok], q1[ok], q2[ok]
    return batch.event[tops], batch.p[tops], np.stack([batch.p[bq], batch.p[q1], batch.p[q2]], axis=1)


def delta_r(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Delta R = sqrt(d eta^2 + d phi^2) between four-vectors p and q [..., 4] (phi wrapped)."""
    _, eta_p, phi_p = pt_eta_phi(p)
    _, eta_q, phi_q = pt_eta_phi(q)
    return np.hypot(eta_p - eta_q, wrap_phi(phi_p - phi_q))


def matched_tops(jet: np.ndarray, tops: tuple[np.ndarray, np.ndarray, np.ndarray], radius: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each event's jet [B, 4]: whether a hadronic top and its three quarks lie within `radius`
    of it, and that top's (px, py, pz, E) [B, 4] (the first such top; zeros where none)."""
    event, top, quarks = tops
    near = delta_r(jet[event], top) < radius
    near &= np.all(delta_r(jet[event][:, None, :], quarks) < radius, axis=1)
    matched = np.zeros(jet.shape[0], bool)
    truth = np.zeros_like(jet)
    hits = np.nonzero(near)[0][::-1]  # written last-to-first, so the first matching top wins
    matched[event[hits]] = True
    truth[event[hits]] = top[hits]
    return matched, truth


def padded_constituents(p: np.ndarray, members: np.ndarray, counts: np.ndarray, size: int) -> np.ndarray:
    """float32 [J, size, 4] (E, px, py, pz): each jet's constituents by decreasing pT, zero-padded
    (constituents beyond `size` are dropped). members: indices into p [N, 4] (px, py, pz, E), by jet."""
    jet = np.repeat(np.arange(counts.size), counts)
    q = p[members]
    order = np.lexsort((-np.hypot(q[:, 0], q[:, 1]), jet))
    q, jet = q[order], jet[order]
    slot = np.arange(jet.size) - np.concatenate([[0], np.cumsum(counts)])[:-1][jet]
    keep = slot < size
    out = np.zeros((counts.size, size, 4), np.float32)
    out[jet[keep], slot[keep]] = q[keep][:, [3, 0, 1, 2]]
    return out


def _to_e_first(p: np.ndarray) -> np.ndarray:
    """(px, py, pz, E) -> float32 (E, px, py, pz), the JetArrays order."""
    return p[..., [3, 0, 1, 2]].astype(np.float32)


def select_jets(batch: EventBatch, seen: Particles, config: GenerationConfig) -> tuple[JetArrays, Truth]:
    """The accepted leading jets of a batch (pT and eta window; for tops, the truth match)."""
    jet, members, counts = leading_jets(seen, batch.n_events, config.radius, 0.5 * config.jet_pt_min)
    pt, eta, _ = pt_eta_phi(jet)
    keep = (pt > config.jet_pt_min) & (pt < config.jet_pt_max) & (np.abs(eta) < config.jet_eta_max)
    top = np.zeros_like(jet)
    if config.process == "top":
        matched, top = matched_tops(jet, hadronic_tops(batch), config.match_radius)
        keep &= matched
    jet_of_member = np.repeat(np.arange(batch.n_events), counts)
    members = members[keep[jet_of_member]]
    constituents = padded_constituents(seen.p, members, counts[keep], config.max_constituents)
    n = int(keep.sum())
    label = np.full(n, SIGNAL if config.process == "top" else BACKGROUND, np.int8)
    arrays = JetArrays(constituents, label, np.ones(n, np.float32), _to_e_first(jet[keep]))
    return arrays, Truth(_to_e_first(top[keep]))


# ---------------------------------------------------------------- workers


_PROGRESS = None  # a worker's queue to the parent's progress bar


def _set_progress_queue(queue) -> None:
    global _PROGRESS
    _PROGRESS = queue


def generate_share(config: GenerationConfig, n_jets: int, seeds: tuple[int, int],
                   report: Callable[[int], None] | None = None) -> tuple[JetArrays, Truth, dict]:
    """`n_jets` accepted jets from one fresh Pythia instance seeded with seeds[0] (tower smearing
    from numpy seed seeds[1]). `report(k)` is called after each batch with the jets it added.

    Returns (jets, truth, counts: events, cpu_seconds of this process)."""
    import pythia8mc

    start = time.process_time()
    report = report or (lambda k: None)
    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in pythia_settings(config, seeds[0]):
        pythia.readString(line)
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with {pythia_settings(config, seeds[0])}")
    charge = charge_table(pythia.particleData)
    rng = np.random.default_rng(seeds[1])
    parts, have, events = [], 0, 0
    while have < n_jets:
        # about 40 % of events give a jet; ask for a little more than what is missing
        n_events = int(min(config.batch_events, max(8, 3 * (n_jets - have))))
        batch = event_batch(pythia.nextBatch(n_events))
        events += batch.n_events
        visible = visible_particles(batch, charge)
        seen = tower_response(visible, rng, config.towers) if config.detector == "towers" else visible
        arrays, truth = select_jets(batch, seen, config)
        take = min(len(arrays), n_jets - have)
        if have + take == 0 and events >= config.give_up_events:
            raise ConfigError(
                f"no {config.process} jet passed the cuts ({config.jet_pt_min:g} < pT < {config.jet_pt_max:g} GeV, "
                f"|eta| < {config.jet_eta_max:g}) in {events} events: choose a pT-hat window around the jet pT range")
        parts.append((take_jets(arrays, slice(take)), truth.top[:take]))
        have += take
        report(take)
    jets = concatenate_jets([part[0] for part in parts])
    truth = Truth(np.concatenate([part[1] for part in parts]))
    return jets, truth, {"events": events, "cpu_seconds": time.process_time() - start}


def _worker(job) -> tuple[JetArrays, Truth, dict]:
    config, n_jets, seeds = job
    report = (lambda k: _PROGRESS.put(k)) if _PROGRESS is not None else None
    return generate_share(config, n_jets, seeds, report)


def generate_jets(config: GenerationConfig, n_jets: int, seed: int, workers: int = 1,
                  progress: bool = True) -> tuple[JetArrays, Truth, dict]:
    """`n_jets` jets of `config.process` from `workers` processes (see the module docstring).

    Returns (jets, truth, stats): stats has jets, events, efficiency (jets per event), seconds
    (wall), cpu_seconds (the workers' own CPU time, summed: other load on the machine does not
    count), jets_per_cpu_second and mean_constituents."""
    from tqdm import tqdm

    config.validate()
    if n_jets < 1 or workers < 1:
        raise ConfigError(f"--jets and --workers must be >= 1 (got {n_jets}, {workers})")
    workers = min(workers, n_jets)
    jobs = [(config, n, s) for n, s in zip(shares(n_jets, workers), worker_seeds(seed, config.process, workers))]
    bar = tqdm(total=n_jets, desc=f"generate {config.process}", unit="jet", disable=not progress)
    start = time.perf_counter()
    if workers == 1:
        results = [generate_share(*jobs[0], report=bar.update)]
    else:
        results = _run_workers(jobs, bar)
    bar.close()
    jets = concatenate_jets([r[0] for r in results])
    truth = Truth(np.concatenate([r[1].top for r in results]))
    events = sum(r[2]["events"] for r in results)
    cpu = sum(r[2]["cpu_seconds"] for r in results)
    stats = {"process": config.process, "detector": config.detector, "jets": len(jets), "events": events,
             "efficiency": len(jets) / max(events, 1), "seconds": time.perf_counter() - start,
             "cpu_seconds": cpu, "jets_per_cpu_second": len(jets) / cpu if cpu else float("nan"),
             "mean_constituents": float(jets.n_constituents.mean()) if len(jets) else float("nan"),
             "workers": workers, "seed": seed}
    return jets, truth, stats


def _run_workers(jobs, bar) -> list:
    """Runs the jobs in a process pool, feeding the progress bar from the workers' queue."""
    ctx = get_context("forkserver")  # not fork: the parent may have started threads (JAX, BLAS)
    ctx.set_forkserver_preload(["gnntrack.jets.generate"])
    queue = ctx.Queue()
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx, initializer=_set_progress_queue,
                             initargs=(queue,)) as pool:
        futures = [pool.submit(_worker, job) for job in jobs]
        try:
            while not all(f.done() for f in futures):
                with contextlib.suppress(Exception):
                    bar.update(queue.get(timeout=0.2))
            while not queue.empty():
                bar.update(queue.get())
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
