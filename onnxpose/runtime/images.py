"""Image loading and preprocessing for PoseNet inputs (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import NORMALIZATIONS

Image.MAX_IMAGE_PIXELS = 100_000_000  # refuse decompression bombs above 100 megapixels


def load_image(image) -> Image.Image:
    """An RGB PIL image from a path, a PIL image or an HxWx3 uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit
    images are converted to 8-bit RGB.
    """
    if isinstance(image, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(image))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise OnnxPoseError(None, f"image array must be HxWx3 uint8 RGB, not "
                                      f"{image.dtype} {list(image.shape)}")
        return Image.fromarray(image, "RGB")
    path = Path(os.fspath(image))
    if not path.is_file():
        raise OnnxPoseError(path, "no such image file")
    try:
        with Image.open(path) as opened:
            opened.load()
            return _to_rgb(ImageOps.exif_transpose(opened))
    except Image.DecompressionBombError as exc:
        raise OnnxPoseError(path, f"image too large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise OnnxPoseError(path, "not an image (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise OnnxPoseError(path, f"cannot read image ({exc})") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def to_input_tensor(images: list[Image.Image], info) -> np.ndarray:
    """Resize (stretch, bilinear) and normalize a batch of RGB images for the model."""
    size = (info.input_width, info.input_height)
    batch = np.stack([np.asarray(im.resize(size, Image.BILINEAR), dtype=np.uint8) for im in images])
    if info.input_layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    if info.input_dtype == "uint8":
        return np.ascontiguousarray(batch)
    scale, offset = NORMALIZATIONS[info.normalization]
    return np.ascontiguousarray(batch.astype(np.float32) * np.float32(scale) + np.float32(offset))
