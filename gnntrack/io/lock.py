"""One process at a time in a run directory: an OS advisory lock on `<dir>/.gnntrack.lock`.

    with hold_directory(workdir, "gnntrack train"):
        ...   # a second process on workdir gets DirectoryBusy naming this one (pid, host)

The lock is `fcntl.flock` on the lock file: the kernel releases it when the holding process ends,
however it ends (kill -9 included), so a stale lock never blocks a resume; the file itself stays
and only says who held it last. The holder writes its pid, host, command and start time into the
file so that a refused process can name it. A process may take the same directory again while
it holds it (e.g. a command around a library call that also locks), which only counts.

flock works between processes on one machine and, on Linux, on NFS (the client maps it to a
POSIX lock on the server); on a file system without locks `hold_directory` raises GnnTrackError.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterator

from gnntrack.errors import GnnTrackError, InputError

LOCK_FILE_NAME = ".gnntrack.lock"

# realpath of a directory -> (open lock file, depth) of the locks this process holds
_held: dict[str, tuple[IO[str], int]] = {}
_held_guard = threading.Lock()


class DirectoryBusy(GnnTrackError):
    """Another live process holds the directory's lock."""


def describe_holder(info: dict) -> str:
    """'pid 123 on host-a (this machine), `gnntrack train ...` since 2025-01-02 10:00:00' from a
    lock file's record."""
    host = info.get("host") or "an unknown host"
    text = f"pid {info.get('pid', '?')} on {host}" + (" (this machine)" if host == socket.gethostname() else "")
    command = str(info.get("command") or "")
    if command:
        text += f", `{command if len(command) <= 200 else command[:197] + '...'}`"
    return text + (f" since {info['since']}" if info.get("since") else "")


def read_holder(directory: str | os.PathLike) -> dict:
    """The record the last holder wrote into the lock file ({} when there is none or it is unreadable)."""
    try:
        info = json.loads((Path(directory) / LOCK_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _busy(directory: Path) -> DirectoryBusy:
    info = read_holder(directory)
    who = describe_holder(info) if info else "a process that has not written its pid yet"
    return DirectoryBusy(f"{directory} is in use by another process: {who}. Wait for it to finish or stop it, "
                         "or use another directory (a killed process leaves no lock behind)")


def _open_lock_file(directory: Path) -> IO[str]:
    """Creates the directory if needed and opens its lock file; InputError when a file is in the way."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return open(directory / LOCK_FILE_NAME, "a+", encoding="utf-8")
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{directory} cannot be used as a directory: a file is in the way") from None


def _try_lock(handle: IO[str], directory: Path) -> bool:
    """Takes the exclusive lock without waiting; False when another process holds it."""
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise GnnTrackError(f"cannot lock {directory / LOCK_FILE_NAME}: {exc.strerror} (the file system "
                            "offers no locks; use a local or NFS directory)") from None


def _write_holder(handle: IO[str], command: str) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record) + "\n")
    handle.flush()


@contextlib.contextmanager
def hold_directory(directory: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Holds `directory`'s lock for the block (creating the directory if needed).

    Args:
      command: what the holder does, shown to a refused process (default: this process's argv).
    Raises DirectoryBusy (a GnnTrackError) at once when another process holds it.
    """
    directory = Path(directory)
    key = os.path.realpath(directory)
    with _held_guard:
        if key in _held:
            handle, depth = _held[key]
            _held[key] = (handle, depth + 1)
        else:
            handle = _open_lock_file(directory)
            try:
                if not _try_lock(handle, directory):
                    raise _busy(directory)
                _write_holder(handle, command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))
            except BaseException:
                handle.close()  # and with it the lock, if it was taken
                raise
            _held[key] = (handle, 1)
    try:
        yield directory
    finally:
        with _held_guard:
            handle, depth = _held[key]
            if depth > 1:
                _held[key] = (handle, depth - 1)
            else:
                del _held[key]
                handle.close()  # closing the last descriptor releases the flock


def check_not_busy(directory: str | os.PathLike) -> None:
    """Raises DirectoryBusy when another process holds `directory`'s lock; takes nothing.

    For a launcher that starts the processes which will hold it, so that it fails at once."""
    directory = Path(directory)
    if not (directory / LOCK_FILE_NAME).exists() or os.path.realpath(directory) in _held:
        return
    with open(directory / LOCK_FILE_NAME, "a+", encoding="utf-8") as handle:
        if not _try_lock(handle, directory):
            raise _busy(directory)
