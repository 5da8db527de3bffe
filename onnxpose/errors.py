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


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line: the message's first line, whitespace collapsed, cut at
    ``limit`` characters (just ``Type`` for an empty message)."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split())[:limit] if lines else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


class MissingExtraError(OnnxPoseError, ImportError):
    """A command or module needs an optional extra (``pip install 'onnxpose[EXTRA]'``) that is not
    installed. An ImportError too, so ``import onnxpose.build`` fails the ordinary way."""


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str) -> None:
    """Raise MissingExtraError naming ``extra`` and the missing ``modules``, if any is missing.

    Looks the modules up without importing them (``importlib.util.find_spec``)."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingExtraError(None, f"{needed_by} needs the {extra} extra: "
                                      f"pip install 'onnxpose[{extra}]' (missing {', '.join(missing)})")


#: what the ``build`` extra provides (import names), checked by ``onnxpose build`` and ``inspect``
BUILD_EXTRA_MODULES = ("tf2onnx", "tensorflow", "onnx_graphsurgeon")
