"""Particle-flow events end to end: Pythia -> tracks and clusters -> elements, targets, baseline.

    event = simulate_event(particles, rng, config, event_id=0)       # one bunch crossing
    summary = simulate_to_directory("out", 100, config, seed=1, workers=2)

Events are made in chunks of `chunk_size`; chunk k uses the seeds (seed, k) only (Pythia's and
numpy's), so the files are byte-identical for the same seed, chunk size and settings, whatever
the number of workers. Each worker process builds its Pythia instances once, on its first chunk.
"""

from __future__ import annotations

import time
from pathlib import Path

import ml_collections
import numpy as np
import scipy.sparse

from gnntrack.config import config_to_dict
from gnntrack.io.atomic import write_json_atomic
from gnntrack.pflow import baseline
from gnntrack.pflow.calo import (calorimeter_grids, cell_energies, cluster_features, particle_cluster_energy,
                                 shower_deposits, topo_cluster)
from gnntrack.pflow.elements import cluster_rows, track_rows
from gnntrack.pflow.generate import EventGenerator, GenParticles, chunk_seeds
from gnntrack.pflow.store import CHUNK_PATTERN, META_NAME, PflowEvent, chunk_arrays, write_npz_atomic
from gnntrack.pflow.targets import assign_elements, kinematic_columns, target_rows, visible
from gnntrack.pflow.tracks import particle_class, pt_eta_phi, reconstruct_tracks
from gnntrack.pflow.types import ELEMENT_FEATURES, PARTICLE_CLASSES, TARGET_COLUMNS
from gnntrack.pool import map_jobs

GEN_ETA_MAX = 5.0  # generator particles kept for jets and missing E_T (beyond: beam remnants)


def simulate_event(particles: GenParticles, rng: np.random.Generator, config: ml_collections.ConfigDict,
                   event_id: int) -> PflowEvent:
    """Detector response, elements, targets and baseline of one bunch crossing."""
    tracks = reconstruct_tracks(particles, rng, config)
    deposits = shower_deposits(particles, rng, config)
    rows, matrices = [track_rows(tracks)], []
    cl = config.clustering
    for grid in calorimeter_grids(config):
        cells = cell_energies(deposits[grid.name], grid, rng)
        labels = topo_cluster(cells, grid.noise_gev, cl.seed_sigma, cl.neighbour_sigma, cl.cell_sigma)
        rows.append(cluster_rows(cluster_features(cells, labels, grid), ecal=grid.name == "ecal"))
        matrices.append(particle_cluster_energy(deposits[grid.name], labels, len(particles)))
    elements = np.concatenate(rows)
    cls = particle_class(particles.pid, particles.charge)
    cluster_energy = scipy.sparse.hstack(matrices, format="csr")
    energy = particles.p4[:, 3]
    eligible = visible(energy, cls > 0, tracks.particle, cluster_energy)
    assignment = assign_elements(energy, particles.p4, eligible, tracks.particle, cluster_energy)
    _, eta, _ = pt_eta_phi(particles.p4)
    gen = np.abs(eta) < GEN_ETA_MAX
    gen_index = np.cumsum(gen) - 1  # particle index -> row of the stored gen particles
    main = np.concatenate([tracks.particle, main_contributor(cluster_energy)])
    particle = np.where(main >= 0, gen_index[np.maximum(main, 0)], -1)
    gen_rows = np.concatenate([cls[gen, None], particles.charge[gen, None], kinematic_columns(particles.p4[gen])],
                              axis=1).astype(np.float32)
    return PflowEvent(event_id=int(event_id), elements=elements,
                      targets=target_rows(assignment, cls, particles.charge),
                      baseline=baseline.predict(elements, config), particle=particle, gen=gen_rows,
                      gen_pid=particles.pid[gen], gen_collision=particles.collision[gen])


def main_contributor(cluster_energy: scipy.sparse.csr_matrix) -> np.ndarray:
    """int64 [K]: the particle that left the most energy in each cluster (-1: noise only)."""
    csc = cluster_energy.tocsc()
    best = np.asarray(csc.argmax(axis=0)).ravel().astype(np.int64)
    return np.where(np.diff(csc.indptr) > 0, best, -1)


_WORKER_GENERATOR: dict[tuple, EventGenerator] = {}  # per process: Pythia is built once


def _generator(config: ml_collections.ConfigDict) -> EventGenerator:
    key = (config.pileup, config.process, config.ecm_gev, config.tau0_max_mm)
    if key not in _WORKER_GENERATOR:
        _WORKER_GENERATOR.clear()
        _WORKER_GENERATOR[key] = EventGenerator(config.pileup, process=config.process, ecm_gev=config.ecm_gev,
                                                tau0_max_mm=config.tau0_max_mm)
    return _WORKER_GENERATOR[key]


def simulate_chunk(seed: int, chunk: int, n_events: int, first_event_id: int,
                   config: ml_collections.ConfigDict) -> tuple[list[PflowEvent], dict]:
    """The events of chunk `chunk` (event ids first_event_id ...) and timings in seconds summed
    over the chunk's events: generation (Pythia) and detector (everything after) in wall-clock
    time, cpu in this process's CPU time (steadier on a busy machine)."""
    generator = _generator(config)
    hard_seed, pileup_seed, rng = chunk_seeds(seed, chunk)
    generator.reseed(hard_seed, pileup_seed, rng)
    events, seconds = [], {"generation": 0.0, "detector": 0.0}
    cpu = time.process_time()
    for k in range(n_events):
        start = time.perf_counter()
        particles = generator.next()
        middle = time.perf_counter()
        events.append(simulate_event(particles, rng, config, first_event_id + k))
        seconds["generation"] += middle - start
        seconds["detector"] += time.perf_counter() - middle
    seconds["cpu"] = time.process_time() - cpu
    return events, seconds


def _write_chunk(job: tuple) -> dict:
    out_dir, seed, chunk, n_events, first_event_id, config = job
    events, seconds = simulate_chunk(seed, chunk, n_events, first_event_id, config)
    name = CHUNK_PATTERN.format(chunk)
    write_npz_atomic(Path(out_dir) / name, chunk_arrays(events))
    return {"name": name, "events": n_events, "elements": [len(e.elements) for e in events], **seconds}


def simulate_to_directory(out_dir: str | Path, n_events: int, config: ml_collections.ConfigDict, seed: int, *,
                          workers: int = 1, chunk_size: int = 10, first_event_id: int = 0,
                          progress: bool = True) -> dict:
    """Writes `n_events` events as chunk files and then pflow.json (returned as a dict)."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out_dir), seed, k, min(chunk_size, n_events - start), first_event_id + start, config)
            for k, start in enumerate(range(0, n_events, chunk_size))]
    bar = tqdm(total=n_events, desc=f"pflow mu={config.pileup:g}", unit="event", disable=not progress)
    start = time.perf_counter()
    results = map_jobs(_write_chunk, jobs, workers=workers, preload=["gnntrack.pflow.simulate"],
                       on_result=lambda result: bar.update(result["events"]))
    bar.close()
    elements = np.concatenate([r["elements"] for r in results])
    meta = {
        "seed": int(seed), "events": int(n_events), "chunk_size": int(chunk_size),
        "first_event_id": int(first_event_id), "workers": int(workers),
        "element_features": list(ELEMENT_FEATURES), "target_columns": list(TARGET_COLUMNS),
        "particle_classes": list(PARTICLE_CLASSES), "config": config_to_dict(config),
        "chunks": [r["name"] for r in results],
        "elements_per_event": {"mean": float(elements.mean()), "min": int(elements.min()), "max": int(elements.max())},
        "seconds_per_event": {"generation": sum(r["generation"] for r in results) / n_events,
                              "detector": sum(r["detector"] for r in results) / n_events,
                              "cpu": sum(r["cpu"] for r in results) / n_events,
                              "wall": (time.perf_counter() - start) / n_events},
    }
    write_json_atomic(out_dir / META_NAME, meta)
    return meta
