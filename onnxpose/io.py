"""Write files atomically: a temp file in the same directory, then rename.

Readers see either the old file or the complete new one, never a partial file; two writers
to the same path each write their own temp file, so the path ends up holding one complete
file (the last rename wins). The new file gets the permissions an ordinary ``open(path, "w")``
would give (an existing file's mode, else 0o666 minus the umask), not ``mkstemp``'s 0o600.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path

from onnxpose.errors import OnnxPoseError


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early (before long work) if ``path`` cannot be written.

    A new path or an existing regular file is fine (it is replaced by a rename). Anything
    else that exists is refused: a symbolic link (onnxpose neither writes through a link nor
    replaces it: give the link's target), a directory, a device (``/dev/null``), a FIFO or a
    socket, which a rename would turn into a regular file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_symlink():
        raise OnnxPoseError(path, "output path is a symbolic link; onnxpose does not write "
                                  "through or replace links (give the target path)")
    if path.is_dir():
        raise OnnxPoseError(path, "output path is a directory")
    if path.exists() and not path.is_file():
        raise OnnxPoseError(path, "output path exists and is not a regular file (a device, "
                                  "FIFO or socket); give a new path or a regular file")
    if not parent.is_dir():
        raise OnnxPoseError(path, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OnnxPoseError(path, f"output directory {parent} is not writable")
    return path


def check_output_directory(path: str | os.PathLike, *, must_exist: bool = False) -> Path:
    """Fail early if ``path`` cannot be used as an output directory (created if new)."""
    path = Path(path)
    if path.is_symlink():
        raise OnnxPoseError(path, "output directory is a symbolic link; onnxpose does not "
                                  "write through links (give the target path)")
    if path.exists() and not path.is_dir():
        raise OnnxPoseError(path, "is not a directory")
    if not path.exists():
        if must_exist:
            raise OnnxPoseError(path, "no such directory")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise OnnxPoseError(path, f"output directory {parent} does not exist")
    elif not os.access(path, os.W_OK):
        raise OnnxPoseError(path, "output directory is not writable")
    return path


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)  # replacing a file keeps its permissions
    except OSError:
        return 0o666 & ~_umask()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temp path next to ``path``; on success it is renamed onto ``path``.

    On any error (or KeyboardInterrupt) the temp file is removed and an existing ``path`` is
    untouched; an OSError while writing (disk full, I/O error) becomes an OnnxPoseError.
    """
    path = check_output_path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OnnxPoseError(path, f"cannot create a file in {parent} ({exc.strerror or exc})") from exc
    try:
        os.fchmod(fd, _new_file_mode(path))
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OnnxPoseError(path, f"cannot write the file ({exc.strerror or exc})") from exc
        raise
    _fsync_directory(parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)
