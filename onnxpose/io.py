"""Write files atomically: a temp file in the same directory, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from onnxpose.errors import OnnxPoseError


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early (before long work) if ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OnnxPoseError(path, "output path is a directory")
    if not parent.is_dir():
        raise OnnxPoseError(path, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OnnxPoseError(path, f"output directory {parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temp path next to ``path``; on success it is renamed onto ``path``.

    On any error the temp file is removed and an existing ``path`` is untouched.
    """
    path = check_output_path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)
