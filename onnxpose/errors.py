"""The one error type users see: a file and what is wrong with it."""

from __future__ import annotations

import os


class OnnxPoseError(Exception):
    """A user-facing error: ``path`` (may be None) and a one-line ``reason``.

    The CLI prints ``onnxpose: error: PATH: REASON`` and exits non-zero.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(self.reason if self.path is None else f"{self.path}: {self.reason}")
