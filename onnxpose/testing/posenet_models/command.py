"""``python -m onnxpose.testing.posenet_models``: build (or reuse) a model file, print its path."""

from __future__ import annotations

import argparse
import re
import sys

from onnxpose.errors import OnnxPoseError
from onnxpose.testing.posenet_models.cache import ensure_model
from onnxpose.testing.posenet_models.network import FORMS, OUTPUT_STRIDES

# CLI

def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 257x257, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m onnxpose.testing.posenet_models",
        description="Build (or reuse from the cache) a PoseNet MobileNetV1 0.75 model file and print its path.")
    parser.add_argument("--form", choices=FORMS, required=True)
    parser.add_argument("--size", type=_parse_size, default=(257, 257), help="input HxW (default 257x257)")
    parser.add_argument("--stride", type=int, choices=OUTPUT_STRIDES, default=32)
    parser.add_argument("--weights", choices=("real", "random"), default="real")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atrous", choices=("auto", "yes", "no"), default="auto",
                        help="dilate layers past the output stride as TF.js does (auto: no for real, yes for random)")
    args = parser.parse_args(argv)
    atrous = {"auto": None, "yes": True, "no": False}[args.atrous]
    try:
        path = ensure_model(args.form, args.size, args.stride, args.weights, args.seed, atrous=atrous)
    except OnnxPoseError as exc:
        print(f"onnxpose: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
