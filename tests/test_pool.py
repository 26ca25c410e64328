"""map_jobs: results in job order in this process or in workers; a worker's failure stops the pool."""

import math

import pytest

from gnntrack.pool import map_jobs


def test_results_come_in_job_order_and_each_is_reported_as_it_arrives():
    seen = []
    assert map_jobs(math.sqrt, [16.0, 4.0], on_result=seen.append) == [4.0, 2.0]
    assert seen == [4.0, 2.0]
    assert map_jobs(math.sqrt, [16.0, 4.0, 9.0], workers=2) == [4.0, 2.0, 3.0]


def test_a_failing_job_in_a_worker_raises_its_error_here():
    with pytest.raises(ValueError, match="math domain error"):
        map_jobs(math.sqrt, [4.0, -1.0, 9.0], workers=2)
