"""Run-directory locks: a second process is refused at once and told who holds the directory;
a killed holder (kill -9) leaves no lock behind; one process may nest its own holds."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gnntrack.errors import InputError
from gnntrack.io.lock import LOCK_FILE_NAME, DirectoryBusy, check_not_busy, hold_directory

ROOT = Path(__file__).resolve().parents[2]

HOLDER = ("import sys; from gnntrack.io.lock import hold_directory\n"
          "with hold_directory(sys.argv[1], 'gnntrack train (test holder)'):\n"
          "    print('held', flush=True)\n"
          "    sys.stdin.read()\n")


@pytest.fixture
def holder():
    """Starts a process that holds a directory's lock until its stdin closes; yields a function
    dir -> Popen (returns once the lock is held). Processes still running at the end are killed."""
    procs = []

    def start(directory):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"  # blocks until the holder has the lock
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_process_is_refused_and_told_who_holds_it(tmp_path, holder):
    proc = holder(tmp_path / "run")
    with pytest.raises(DirectoryBusy) as info:
        with hold_directory(tmp_path / "run"):
            pass
    message = str(info.value)
    assert f"pid {proc.pid} on {socket.gethostname()}" in message and "gnntrack train (test holder)" in message
    assert str(tmp_path / "run") in message and "\n" not in message
    with pytest.raises(DirectoryBusy):
        check_not_busy(tmp_path / "run")
    proc.stdin.close()  # a holder that ends normally releases it
    proc.wait()
    check_not_busy(tmp_path / "run")


def test_a_killed_holder_leaves_no_lock(tmp_path, holder):
    proc = holder(tmp_path / "run")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "run" / LOCK_FILE_NAME).exists()  # the file stays; the kernel dropped the lock
    with hold_directory(tmp_path / "run", "resume") as held:
        assert held == tmp_path / "run"
        assert f'"pid": {os.getpid()}' in (held / LOCK_FILE_NAME).read_text()


def test_one_process_may_nest_its_holds(tmp_path, holder):
    with hold_directory(tmp_path / "run"):
        with hold_directory(tmp_path / "run"):
            check_not_busy(tmp_path / "run")  # our own hold is not "busy"
        # still held after the inner block: another process is refused
        proc = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path / "run")], input="",
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode != 0 and "DirectoryBusy" in proc.stderr and str(os.getpid()) in proc.stderr
    holder(tmp_path / "run")  # released after the outer block


def test_a_file_in_the_way_is_an_input_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="file is in the way"):
        with hold_directory(tmp_path / "file"):
            pass
    with pytest.raises(InputError, match="file is in the way"):
        with hold_directory(tmp_path / "file" / "run"):
            pass


def test_a_second_scaling_study_on_a_busy_directory_stops_at_once(tmp_path, holder, capsys):
    from gnntrack.cli import main

    proc = holder(tmp_path / "study")
    code = main(["scale", "--config", str(ROOT / "experiments" / "scaling" / "devices.py"),
                 "--workdir", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"pid {proc.pid}" in err
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == [LOCK_FILE_NAME]  # nothing started
