"""Image loading and preprocessing for PoseNet inputs (Pillow)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import NORMALIZATIONS

#: images with more pixels than this are refused before decoding (decompression bombs)
MAX_IMAGE_PIXELS = 100_000_000
# Pillow (process-wide setting) raises above twice this and warns between 1x and 2x; onnxpose
# refuses that band itself (_check_size), so the warning would only add a stray stderr line.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _check_size(path, width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise OnnxPoseError(path, f"image has no pixels ({width}x{height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise OnnxPoseError(path, f"image too large: {width}x{height} is {width * height} pixels, "
                                  f"more than the limit of {MAX_IMAGE_PIXELS}")


def _too_large_message(pillow_message: str) -> str:
    """onnxpose's own limit in the words of _check_size, not Pillow's (twice as large)."""
    found = re.search(r"\((\d+) pixels\)", pillow_message)
    size = f"{int(found.group(1))} pixels, " if found else ""
    return f"image too large: {size}more than the limit of {MAX_IMAGE_PIXELS}"


def load_image(image) -> Image.Image:
    """An RGB PIL image from a path, a PIL image or an HxWx3 uint8 RGB array.

    EXIF orientation is applied (the image is turned upright, so keypoints are in the
    upright image's pixels); grayscale, palette, RGBA (composited on black), CMYK, 16-bit,
    32-bit integer and float images are converted to 8-bit RGB. Files with more than
    MAX_IMAGE_PIXELS pixels are refused before they are decoded. Every failure is an
    OnnxPoseError with a one-line reason.
    """
    if isinstance(image, Image.Image):
        try:
            return _to_rgb(_upright(image))
        except OnnxPoseError:
            raise
        except Exception as exc:
            raise OnnxPoseError(None, f"cannot use the image ({type(exc).__name__}: {exc})") from exc
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise OnnxPoseError(None, f"image array must be HxWx3 uint8 RGB, not "
                                      f"{image.dtype} {list(image.shape)}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise OnnxPoseError(None, f"image array has no pixels ({list(image.shape)})")
        return Image.fromarray(np.ascontiguousarray(image), "RGB")
    try:
        path = Path(os.fspath(image))
    except TypeError:
        raise OnnxPoseError(None, f"not an image: {type(image).__name__} (give a path, a PIL "
                                  "image or an HxWx3 uint8 array)") from None
    if not path.exists():
        raise OnnxPoseError(path, "no such image file")
    if not path.is_file():
        raise OnnxPoseError(path, "not a regular file")
    try:
        if path.stat().st_size == 0:
            raise OnnxPoseError(path, "image file is empty")
        with Image.open(path) as opened:
            _check_size(path, *opened.size)
            opened.load()
            return _to_rgb(_upright(opened))
    except OnnxPoseError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses above 2x its limit in open()
        raise OnnxPoseError(path, _too_large_message(str(exc))) from exc
    except UnidentifiedImageError as exc:
        raise OnnxPoseError(path, "not an image (unrecognised format)") from exc
    except MemoryError as exc:
        raise OnnxPoseError(path, "image too large to decode (out of memory)") from exc
    except Exception as exc:  # truncated or corrupt data: OSError, SyntaxError, ValueError, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise OnnxPoseError(path, f"cannot read image ({reason})") from exc


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(array.max(initial=0.0))
        if image.mode == "F":
            top = 1.0 if peak <= 1.0 else 255.0  # float images: 0..1 or 0..255
        else:
            top = 65535.0 if image.mode.startswith("I;16") or peak > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("La", "RGBa"):  # premultiplied alpha
        image = image.convert("RGBA" if image.mode == "RGBa" else "LA")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise OnnxPoseError(None, f"unsupported image mode {image.mode}") from exc


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
