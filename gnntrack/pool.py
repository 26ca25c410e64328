"""Independent jobs in worker processes: results in job order, stopping at the first failure.

    results = map_jobs(build_one, jobs, workers=4, preload=["gnntrack.graphs.build"],
                       on_result=lambda result: bar.update())
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Sequence


def map_jobs(function: Callable[[Any], Any], jobs: Sequence, *, workers: int = 1, preload: Iterable[str] = (),
             on_result: Callable[[Any], None] | None = None) -> list:
    """[function(job) for job in jobs], in `workers` processes when workers > 1 and there is more
    than one job, else in this process. `on_result` runs here as each result arrives (in order).

    Workers come from a forkserver (not fork: the parent may have started JAX or BLAS threads)
    that imports the `preload` modules once; every worker forks from it. `function` must be a
    module-level function of one of those modules.
    """
    results = []

    def collect(result):
        results.append(result)
        if on_result is not None:
            on_result(result)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            collect(function(job))
        return results
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        try:
            for result in pool.map(function, jobs):
                collect(result)
        except BaseException:
            # stop at the first failure (a bad event, a full disk): leaving the block would
            # otherwise wait for every queued job to run (and fail) first
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results
