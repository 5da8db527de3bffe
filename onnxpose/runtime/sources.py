"""Inputs of `onnxpose predict`: image files, folders (recursive, sorted), globs and videos.

``expand_inputs`` turns the command line's INPUT arguments into a list of ``Source`` (checked
before any slow work: a path that matches nothing is a one-line error); ``pipeline.iter_items`` turns the
sources into ``Item``s, one per image or kept video frame, in order. An image item carries its
path (decoded later, in the reading pool); a video frame item carries the decoded frame. A file
that cannot be read gives a ``Fault`` item instead, and the run goes on.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from onnxpose.errors import OnnxPoseError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif",
                            ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                            ".ts", ".wmv", ".flv"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One input file: ``kind`` "image" or "video"; ``relative`` is its path below the folder or
    glob root it was found in (its name for a file given directly): the overlay's name."""

    path: str
    kind: str
    relative: str


@dataclass(frozen=True)
class Item:
    """One image or video frame to run. ``frame``/``timestamp`` are None for images; ``image``
    is a decoded PIL image (video frames) or None (images: read from ``source.path``)."""

    source: Source
    frame: int | None = None
    timestamp: float | None = None
    image: object = None

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.source.path, self.frame)


@dataclass(frozen=True)
class Fault:
    """An input (or one video frame) that could not be read, and why (one line)."""

    source: Source
    reason: str
    frame: int | None = None

    def line(self) -> str:
        where = self.source.path if self.frame is None else f"{self.source.path} frame {self.frame}"
        return f"onnxpose: warning: {where}: {self.reason} (skipped)"


def kind_of(path: str | os.PathLike) -> str | None:
    suffix = Path(path).suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def is_batch_input(arg: str) -> bool:
    """Does this one INPUT need the many-input pipeline (a folder, a glob, a video)?"""
    path = Path(arg)
    if path.is_dir() or kind_of(arg) == "video":
        return True
    return not path.exists() and bool(_GLOB_CHARS & set(arg))


def _walk(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        found += [Path(folder) / name for name in sorted(files)
                  if not name.startswith(".") and kind_of(name)]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def expand_inputs(args) -> list[Source]:
    """Sources in command-line order (folders and globs sorted); raises OnnxPoseError for an
    argument that matches nothing or is of an unknown kind. A file listed twice runs once."""
    sources: list[Source] = []
    seen: set[str] = set()

    def add(path: Path, relative: str, kind: str | None) -> None:
        key = os.fspath(path)
        if kind and key not in seen:
            seen.add(key)
            sources.append(Source(key, kind, relative))

    for arg in args:
        arg = os.fspath(arg)
        path = Path(arg)
        if path.is_dir():
            for found in _walk(path):
                add(found, found.relative_to(path).as_posix(), kind_of(found))
        elif path.exists():
            if not path.is_file():
                raise OnnxPoseError(path, "not a regular file")
            # a file given by name is read whatever its suffix: an image unless it is a video
            add(path, path.name, kind_of(path) or "image")
        elif _GLOB_CHARS & set(arg):
            matches = sorted(m for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            if not matches:
                raise OnnxPoseError(arg, "no file matches this pattern")
            root = Path(_glob_root(arg))
            for match in matches:
                try:
                    relative = Path(match).relative_to(root).as_posix()
                except ValueError:
                    relative = Path(match).name
                add(Path(match), relative, kind_of(match))
        else:
            raise OnnxPoseError(path, "no such file or directory")
    if not sources:
        raise OnnxPoseError(None, "no image or video files in the inputs")
    return sources


def _glob_root(pattern: str) -> str:
    """The folder part of ``pattern`` before its first wildcard."""
    parts = Path(pattern).parts
    root = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        root.append(part)
    return os.path.join(*root) if root else "."
