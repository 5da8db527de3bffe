"""Different crops and sizes of one photo, as a concurrency workload (tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def varied_images(photo_path: Path, count: int) -> list:
    """The photo's path, then ``count - 1`` crops of growing height and shrinking width,
    alternately uint8 arrays and PIL images (seed 0)."""
    from PIL import Image
    with Image.open(photo_path) as im:
        photo = np.asarray(im.convert("RGB"))
    rng = np.random.default_rng(0)
    images = [photo_path]
    for i in range(count - 1):
        top, left = rng.integers(0, 300, 2)
        crop = np.ascontiguousarray(photo[top:top + 600 + 40 * i, left:left + 900 - 30 * i])
        images.append(Image.fromarray(crop) if i % 2 else crop)
    return images
