"""Pythia 8 events for particle flow: pp -> ttbar at 14 TeV plus Poisson pileup.

    generator = EventGenerator(pileup=50.0)       # builds and initialises Pythia (seconds)
    generator.reseed(chunk_seed(seed, chunk))     # every chunk starts from its own seeds
    particles = generator.next()                  # GenParticles of one bunch crossing

The hard scatter and the pileup come from two Pythia instances (`Top:gg2ttbar`, `Top:qqbar2ttbar`;
`SoftQCD:inelastic`), each with its own random stream; the number of pileup collisions is
Poisson(mu) from a numpy stream of the same seed. Particles with a proper lifetime above
`tau0_max_mm` (10 mm, as detector simulations do: K0S and Lambda stay stable) do not decay.
Reseeding an initialised instance (`Rndm::init`) gives the same events as a fresh one with that
seed, so a worker builds its instances once (Pythia's pileup initialisation takes seconds) and
reseeds them per chunk: the events depend on (seed, chunk) only, not on the number of workers.
Units: GeV.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts seeds 1 ... 900 000 000
HARD_PROCESSES = {"ttbar": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")}
PILEUP_PROCESS = ("SoftQCD:inelastic = on",)
NEUTRINOS = (12, 14, 16)
MAX_TRIES = 10


@dataclasses.dataclass
class GenParticles:
    """Final-state generator particles of one bunch crossing (neutrinos included).

    Attributes:
      pid: int32 [M] PDG id.
      charge: int8 [M] electric charge in units of e.
      p4: float64 [M, 4] (px, py, pz, E) in GeV.
      collision: int32 [M] 0 for the hard scatter, k >= 1 for the k-th pileup collision.
    """

    pid: np.ndarray
    charge: np.ndarray
    p4: np.ndarray
    collision: np.ndarray

    def __len__(self) -> int:
        return len(self.pid)

    @staticmethod
    def concatenate(parts: list["GenParticles"]) -> "GenParticles":
        return GenParticles(*(np.concatenate([getattr(p, f.name) for p in parts])
                              for f in dataclasses.fields(GenParticles)))


def pythia_settings(process: tuple[str, ...], *, ecm_gev: float = 14000.0,
                    tau0_max_mm: float = 10.0) -> list[str]:
    """Pythia `readString` lines for `process` (quiet, no event listing or counters)."""
    return ["Print:quiet = on", "Next:numberCount = 0", f"Beams:eCM = {ecm_gev}",
            "Random:setSeed = on", "Random:seed = 1",
            "ParticleDecays:limitTau0 = on", f"ParticleDecays:tau0Max = {tau0_max_mm}", *process]


def make_pythia(settings: list[str]):
    """An initialised `pythia8mc.Pythia` with `settings`; RuntimeError if Pythia refuses them."""
    import pythia8mc  # heavy: imported where a generator is built

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with {settings}")
    return pythia


def final_state(event, collision: int = 0) -> GenParticles:
    """The final-state particles of a Pythia event record as arrays.

    `Event.particles()` hands the whole record over in one call; each column is then read with
    the unbound getter mapped over the particles (np.fromiter(map(Particle.px, ...))), which
    skips the per-particle attribute lookups and tuple building of a row-wise comprehension."""
    import pythia8mc

    particle = pythia8mc.Particle
    final = [p for p in event.particles() if p.isFinal()]
    n = len(final)

    def column(getter, dtype=np.float64):
        return np.fromiter(map(getter, final), dtype, n)

    return GenParticles(pid=column(particle.id, np.int32), charge=np.rint(column(particle.charge)).astype(np.int8),
                        p4=np.stack([column(particle.px), column(particle.py), column(particle.pz),
                                     column(particle.e)], axis=1),
                        collision=np.full(n, collision, np.int32))


def chunk_seeds(seed: int, chunk: int) -> tuple[int, int, np.random.Generator]:
    """(hard-scatter Pythia seed, pileup Pythia seed, numpy stream) of chunk `chunk` of run `seed`."""
    state = np.random.SeedSequence([seed, chunk]).generate_state(2, dtype=np.uint64)
    hard, pileup = (int(s % PYTHIA_SEED_MAX) + 1 for s in state)
    return hard, pileup, np.random.default_rng([seed, chunk, 1])


class EventGenerator:
    """Hard scatter + Poisson(`pileup`) SoftQCD collisions, one `next()` per bunch crossing."""

    def __init__(self, pileup: float = 0.0, *, process: str = "ttbar", ecm_gev: float = 14000.0,
                 tau0_max_mm: float = 10.0):
        self.pileup = float(pileup)
        self.hard = make_pythia(pythia_settings(HARD_PROCESSES[process], ecm_gev=ecm_gev,
                                                tau0_max_mm=tau0_max_mm))
        self.soft = (make_pythia(pythia_settings(PILEUP_PROCESS, ecm_gev=ecm_gev, tau0_max_mm=tau0_max_mm))
                     if self.pileup > 0 else None)
        self.rng = np.random.default_rng(0)

    def reseed(self, hard_seed: int, pileup_seed: int, rng: np.random.Generator) -> None:
        self.hard.rndm.init(hard_seed)
        if self.soft is not None:
            self.soft.rndm.init(pileup_seed)
        self.rng = rng

    def next(self) -> GenParticles:
        parts = [self._next(self.hard, 0)]
        n_pileup = int(self.rng.poisson(self.pileup)) if self.pileup > 0 else 0
        parts += [self._next(self.soft, k) for k in range(1, n_pileup + 1)]
        return GenParticles.concatenate(parts)

    @staticmethod
    def _next(pythia, collision: int) -> GenParticles:
        for _ in range(MAX_TRIES):  # a rare failed event: Pythia's own advice is to ask again
            if pythia.next():
                return final_state(pythia.event, collision)
        raise RuntimeError(f"Pythia failed to generate an event {MAX_TRIES} times in a row")
