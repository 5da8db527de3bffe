"""PIL's ``Image.resize(size, BILINEAR)`` in numpy: the reference of the in-graph resize.

Pillow (``libImaging/Resample.c``) resizes in two separable passes, horizontal first, each
rounded to 8 bits. Per output pixel ``i`` of an axis of ``in_size`` -> ``out_size``:
``scale = in_size / out_size``, ``filterscale = max(scale, 1)`` (a shrink stretches the
triangle filter by the scale), ``support = filterscale``, ``center = (i + 0.5) * scale``,
input taps ``xmin = int(center - support + 0.5)`` .. ``int(center + support + 0.5)`` clamped to
the image, weight ``triangle((j - center + 0.5) / filterscale)`` normalized to sum 1, then
fixed point with 22 fractional bits; a pass sums ``pixel * weight`` in integers and rounds
half up (exactly Pillow's arithmetic). Horizontal pass first, except when the height shrinks
and the width grows (Pillow 13's order, found empirically; some other shrinking sizes also
run vertical first in Pillow, which moves a few pixels by one level).
``onnxpose.decoder.pil_resize`` builds the same function names as graph code.
"""

from __future__ import annotations

import numpy as np

PRECISION_BITS = 22  # Pillow: 32 - 8 - 2


def triangle(t):
    """Pillow's bilinear filter: 1 - |t| on [-1, 1], else 0."""
    return np.maximum(1.0 - np.abs(t), 0.0)


def resize_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(taps int64 [out, K], weights int64 [out, K], fixed point with PRECISION_BITS) of one
    axis; K = 2 * ceil(support) + 1, unused taps point at the last pixel with weight 0."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.floor(center - support + 0.5), 0.0)
    count = np.minimum(np.floor(center + support + 0.5), in_size) - xmin
    offsets = np.arange(ksize, dtype=np.float64)
    taps = xmin[:, None] + offsets[None, :]
    weights = triangle((taps - center[:, None] + 0.5) / filterscale)
    weights = np.where(offsets[None, :] < count[:, None], weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = weights / np.where(total > 0, total, 1.0)
    weights = np.floor(0.5 + weights * (1 << PRECISION_BITS))
    taps = np.minimum(taps, in_size - 1).astype(np.int64)
    return taps, weights.astype(np.int64)


def round_to_uint8(sums):
    """Pillow's rounding of a pass's fixed-point sums: half up, clipped to 0..255."""
    return np.clip((sums + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_pass(pixels: np.ndarray, taps, weights, axis: int) -> np.ndarray:
    """One separable pass along ``axis`` of uint8 [N,H,W,3]."""
    gathered = np.take(pixels, taps, axis=axis).astype(np.int64)  # axis -> (out, K)
    shape = [1] * gathered.ndim
    shape[axis], shape[axis + 1] = weights.shape
    return round_to_uint8(np.sum(gathered * weights.reshape(shape), axis=axis + 1))


def pil_resize(images: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """uint8 [N,H,W,3] -> uint8 [N,h,w,3], as PIL's resize((w, h), BILINEAR) of each image."""
    out_h, out_w = size_hw
    taps_x, weights_x = resize_coefficients(images.shape[2], out_w)
    taps_y, weights_y = resize_coefficients(images.shape[1], out_h)
    if images.shape[1] > out_h and images.shape[2] < out_w:  # Pillow's order (empirical)
        return resize_pass(resize_pass(images, taps_y, weights_y, axis=1), taps_x, weights_x, 2)
    rows = resize_pass(images, taps_x, weights_x, axis=2)
    return resize_pass(rows, taps_y, weights_y, axis=1)
