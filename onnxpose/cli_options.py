"""Parsing and checking of CLI option values (small pure functions, run before slow work)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from onnxpose.errors import OnnxPoseError

#: ``predict --out`` extension -> Pillow format
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def size(value: str | None, option: str = "--input-size"):
    """'353x481' -> (353, 481); None stays None."""
    if value is None:
        return None
    try:
        height, width = (int(v) for v in value.lower().split("x"))
        if height < 1 or width < 1:
            raise ValueError
    except ValueError:
        raise OnnxPoseError(None, f"{option} {value!r} is not HxW (e.g. 257x257)") from None
    return height, width


def names(value: str | None) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b'): comma-separated names, spaces around them stripped."""
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def batches(value: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32); empty entries ('1,,2') and non-positive sizes refused."""
    try:
        parts = [v.strip() for v in value.split(",")]
        result = tuple(int(v) for v in parts)
        if not result or min(result) < 1:
            raise ValueError
    except ValueError:
        raise OnnxPoseError(None, f"--batch {value!r} is not a list of positive batch sizes "
                                  "(e.g. 1,8,32)") from None
    return result


def image_format(path: Path) -> str:
    """Pillow format for an overlay path, from its extension; others refused."""
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = " ".join(sorted(IMAGE_FORMATS))
        raise OnnxPoseError(path, f"unknown image extension {path.suffix or '(none)'!r} for the "
                                  f"overlay (use one of {known})")
    return fmt


def min_score(value: float) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise OnnxPoseError(None, f"--min-score must be a number in [0, 1], not {value!r}")
    return value


def bench_command(ctx) -> str:
    """The bench command line with every option that differs from its default."""
    words = ["onnxpose", "bench", str(ctx.params["model"])]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name == "quiet":
            continue
        if ctx.get_parameter_source(param.name).name == "DEFAULT":
            continue
        value = ctx.params[param.name]
        if param.is_flag and param.secondary_opts:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                words.append(param.opts[0])
        else:
            words += [param.opts[0], str(value)]
    return " ".join(words)
