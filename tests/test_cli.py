"""The CLI's promise: a user error or a broken environment (full disk, read-only or unwritable
locations, a file where a directory belongs, a broken config file) ends in one
`gnntrack VERB: error: ...` block and exit code 2, never a traceback; and nothing half-written
is left for a later reader."""

import errno
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.io.trackml import list_event_prefixes, read_event

SIMULATE = ["simulate", "--events", "2", "--n-particles", "40", "--no-progress"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _os_error(code: int, path: str = "/data/run/graphs/event000001000.npz") -> OSError:
    return OSError(code, os.strerror(code), path)


def _fill_disk(path: str) -> None:
    """Runs in a worker process (module level, so that a spawned worker can import it)."""
    raise _os_error(errno.ENOSPC, path)


# -- full disks and other environment errors ------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_disk_full_in_simulate_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    real_write_bytes = Path.write_bytes

    def write_to_full_disk(self, data):  # every write gets the kernel's own ENOSPC (no file name)
        return real_write_bytes(Path("/dev/full"), data)

    monkeypatch.setattr(Path, "write_bytes", write_to_full_disk)
    out = tmp_path / "sim"
    assert main(SIMULATE + ["--out", str(out)]) == 2
    err = _one_line(capsys)
    assert err.startswith("gnntrack simulate: error: ") and "no space left on device" in err
    assert f"{out / 'event000001000-'}" in err  # the file being written, not a temporary name
    assert list(out.iterdir()) == []  # no part, no temporary left behind


def test_simulate_interrupted_by_a_full_disk_leaves_no_half_event_and_a_rerun_completes_it(
        tmp_path, monkeypatch, capsys):
    real_write_bytes = Path.write_bytes

    def truth_of_second_event_fails(self, data):
        if self.name.startswith(".event000001001-truth."):  # a failed write() names no file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_bytes(self, data)

    out = tmp_path / "sim"
    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_bytes", truth_of_second_event_fails)
        assert main(SIMULATE + ["--out", str(out)]) == 2
    assert "no space left on device" in _one_line(capsys)
    # event 1000 is complete; of event 1001 (hits written before its truth failed) nothing is left
    assert [p.name for p in list_event_prefixes(out)] == ["event000001000"]
    assert sorted(p.name for p in out.iterdir()) == [f"event000001000-{part}.csv"
                                                     for part in ("hits", "particles", "truth")]
    read_event(out / "event000001000", required=("hits", "truth", "particles"))
    # the rerun completes the directory, byte for byte as an uninterrupted run
    assert main(SIMULATE + ["--out", str(out)]) == 0
    assert main(SIMULATE + ["--out", str(tmp_path / "clean")]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == \
        {p.name: p.read_bytes() for p in (tmp_path / "clean").iterdir()}


def test_an_error_raised_in_a_worker_process_is_one_line(tmp_path, monkeypatch, capsys):
    """Worker pools (build-graphs --workers, data.workers) re-raise a worker's exception in the
    parent, with the worker's traceback chained to it as text: still one line."""
    path = str(tmp_path / "graphs" / "event000001000.npz")
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        with pytest.raises(OSError) as raised:
            list(pool.map(_fill_disk, [path]))
    assert raised.value.__cause__ is not None  # concurrent.futures' _RemoteTraceback

    def run(args):
        raise raised.value

    monkeypatch.setattr("gnntrack.commands.build_graphs.run", run)
    assert main(["build-graphs", "--input", "in", "--out", "out"]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"gnntrack build-graphs: error: {path}: no space left on device")


def _wrapped(outer: BaseException, inner: BaseException, how: str = "__cause__") -> BaseException:
    setattr(outer, how, inner)
    return outer


@pytest.mark.parametrize("exc, needle", [
    (_os_error(errno.ENOSPC), "no space left on device"),
    (_os_error(errno.EDQUOT), "disk quota exceeded"),
    (_os_error(errno.EROFS), "read-only file system"),
    (_os_error(errno.EACCES), "permission denied"),
    (_wrapped(RuntimeError("checkpoint save failed"), _os_error(errno.ENOSPC)), "no space left on device"),
    (_wrapped(ValueError("cleanup failed"), _os_error(errno.ENOSPC), "__context__"), "no space left on device"),
    (ExceptionGroup("writes failed", [ValueError("x"), _os_error(errno.EDQUOT)]), "disk quota exceeded"),
], ids=["enospc", "edquot", "erofs", "eacces", "cause", "context", "group"])
def test_environment_errors_are_one_line_naming_the_file(exc, needle, monkeypatch, capsys):
    def run(args):
        raise exc

    monkeypatch.setattr("gnntrack.commands.inspect_event.run", run)
    assert main(["inspect", "x"]) == 2
    err = _one_line(capsys)
    assert err.startswith("gnntrack inspect: error: /data/run/graphs/event000001000.npz: ") and needle in err


@pytest.mark.parametrize("exc", [ValueError("a bug"), _os_error(errno.EBADF)], ids=["bug", "ebadf"])
def test_other_errors_keep_their_traceback(exc, monkeypatch):
    def run(args):
        raise exc

    monkeypatch.setattr("gnntrack.commands.inspect_event.run", run)
    with pytest.raises(type(exc)):
        main(["inspect", "x"])


# -- a file where a directory belongs ----------------------------------------------------------

DIRECTORY_ARGS = {
    "simulate": ["simulate", "--n-particles", "10", "--no-progress", "--out", "{path}"],
    "build-graphs": ["build-graphs", "--input", "{tmp}", "--no-progress", "--out", "{path}"],
    "quickstart": ["quickstart", "--no-progress", "--workdir", "{path}"],
    "evaluate": ["evaluate", "--workdir", "{tmp}", "--input", "{tmp}", "--out", "{path}"],
    "sweep": ["sweep", "--config", "experiments/sweeps/toy_default.py", "--workdir", "{path}"],
    "scale": ["scale", "--config", "experiments/scaling/batch_size.py", "--workdir", "{path}"],
}


@pytest.mark.parametrize("below", [False, True], ids=["file", "below-a-file"])
@pytest.mark.parametrize("verb", sorted(DIRECTORY_ARGS))
def test_a_file_where_an_output_directory_belongs_is_one_line(verb, below, tmp_path, capsys):
    file = tmp_path / "results.txt"
    file.write_text("not a directory\n")
    path = file / "run" if below else file
    argv = [a.format(path=path, tmp=tmp_path) for a in DIRECTORY_ARGS[verb]]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert err.startswith(f"gnntrack {verb}: error: ") and f"{path}" in err and "not a directory" in err
    assert file.read_text() == "not a directory\n"


# -- config files -------------------------------------------------------------------------------

CONFIG_RAISES = '''\
def _learning_rate():
    return 1 / 0


def get_config():
    return _learning_rate()
'''


def _build_graphs_with_config(config, tmp_path) -> list[str]:
    return ["build-graphs", "--config", str(config), "--input", str(tmp_path), "--out", str(tmp_path / "g")]


def test_config_file_that_raises_shows_only_its_own_frames(tmp_path, capsys):
    config = tmp_path / "exp.py"
    config.write_text(CONFIG_RAISES)
    assert main(_build_graphs_with_config(config, tmp_path)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip(" ^~")]  # not Python's ^^^ markers
    assert lines[0] == (f"gnntrack build-graphs: error: config file {config}: get_config() raised "
                        "ZeroDivisionError: division by zero")
    assert lines[1:] == [f'  File "{config}", line 6, in get_config',
                         "    return _learning_rate()",
                         f'  File "{config}", line 2, in _learning_rate',
                         "    return 1 / 0"]


def test_config_file_with_a_syntax_error_is_one_block(tmp_path, capsys):
    config = tmp_path / "exp.py"
    config.write_text("def get_config():\n    return dict(lr=1e-3\n")
    assert main(_build_graphs_with_config(config, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gnntrack build-graphs: error: config file {config}: SyntaxError: ")
    assert f'File "{config}", line 2' in err and "return dict(lr=1e-3" in err
    assert "Traceback" not in err and "gnntrack/" not in err


def test_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(_build_graphs_with_config(tmp_path / "exp.py", tmp_path)) == 2
    assert _one_line(capsys) == f"gnntrack build-graphs: error: config file not found: {tmp_path / 'exp.py'}"


# -- truncated inputs ---------------------------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_submission_is_one_line(tmp_path, capsys):
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from gnntrack.tracks.score import make_submission, write_submission

    config = default_simulation_config()
    config.n_particles = 40
    simulate_events(tmp_path, 1, config, seed=1)
    truth = read_event(tmp_path / "event000001000", ("hits", "truth")).truth
    submission = tmp_path / "submission.csv.gz"
    write_submission(make_submission(1000, truth.hit_id, truth.particle_id), submission)
    assert main(["score", str(tmp_path / "event000001000"), str(submission)]) == 0
    capsys.readouterr()
    _truncate(submission)
    assert main(["score", str(tmp_path / "event000001000"), str(submission)]) == 2
    assert _one_line(capsys).startswith(f"gnntrack score: error: {submission}: unreadable gzip data")


@pytest.mark.parametrize("argv", [["inspect"], ["build-graphs"], ["build-graphs", "--workers", "2"]],
                         ids=["inspect", "build-graphs", "build-graphs-workers"])
def test_truncated_event_file_is_one_line(argv, tmp_path, capsys):
    from gnntrack.detector.simulate import default_simulation_config, simulate_events

    config = default_simulation_config()
    config.n_particles = 40
    simulate_events(tmp_path / "events", 3, config, seed=1, compress=True)
    hits = tmp_path / "events" / "event000001000-hits.csv.gz"
    _truncate(hits)
    if argv[0] == "inspect":
        argv = argv + [str(tmp_path / "events")]
    else:  # with workers, the worker's InputError is re-raised here and the queued events are dropped
        argv = argv + ["--input", str(tmp_path / "events"), "--out", str(tmp_path / "g"), "--no-progress"]
    assert main(argv) == 2
    assert _one_line(capsys).startswith(f"gnntrack {argv[0]}: error: {hits}: unreadable gzip data")


def test_truncated_particles_file_for_simulate_is_one_line(tmp_path, capsys):
    from gnntrack.detector.particles import generate_particles
    from gnntrack.detector.simulate import default_simulation_config

    config = default_simulation_config()
    config.n_particles = 200
    particles = tmp_path / "particles.csv.gz"
    generate_particles(np.random.default_rng(0), config).to_csv(particles, index=False)
    _truncate(particles)
    assert main(SIMULATE + ["--out", str(tmp_path / "sim"), "--from-particles", str(particles)]) == 2
    assert _one_line(capsys).startswith(f"gnntrack simulate: error: {particles}: unreadable gzip data")
