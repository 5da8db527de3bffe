"""Inputs for the many-input predict tests and benchmark, made from one real photo: a folder of
crops, shifts and flips, a short video of a moving crop (PyAV, H.264), a corrupt image and a
truncated video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def variant(photo: Image.Image, index: int, size: tuple[int, int]) -> Image.Image:
    """A seeded crop of 60..100 % of ``photo``, shifted, flipped on odd draws, at ``size`` (w, h)."""
    rng = np.random.default_rng(index)
    width, height = photo.size
    scale = rng.uniform(0.6, 1.0)
    w, h = int(width * scale), int(height * scale)
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    crop = photo.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    return crop.resize(size, Image.BILINEAR)


def make_image_folder(photo_path, folder, count: int = 200, size=(160, 120)) -> list[Path]:
    """``count`` JPEG/PNG variants in ``folder`` and a subfolder (sorted names), and return them."""
    photo = Image.open(photo_path).convert("RGB")
    folder = Path(folder)
    paths = []
    for index in range(count):
        sub = folder / ("sub" if index % 4 == 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img_{index:04d}.{'png' if index % 5 == 0 else 'jpg'}"
        variant(photo, index, size).save(path)
        paths.append(path)
    return paths


def make_video(photo_path, path, frames: int = 24, size=(160, 120), rate: int = 12) -> Path:
    """An H.264 MP4: a crop window panning across the photo, mirrored half-way."""
    import av
    photo = Image.open(photo_path).convert("RGB")
    width, height = photo.size
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(rate))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(frames):
            shift = int((width * 0.25) * index / max(1, frames - 1))
            crop = photo.crop((shift, 0, shift + int(width * 0.75), height)).resize(size)
            if index >= frames // 2:
                crop = ImageOps.mirror(crop)
            for packet in stream.encode(av.VideoFrame.from_image(crop)):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)


def make_corrupt_image(path) -> Path:
    Path(path).write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 4)
    return Path(path)


def make_truncated_video(video, path) -> Path:
    data = Path(video).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return Path(path)
