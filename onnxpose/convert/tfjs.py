"""TF.js graph model (model.json + weight shards) -> ONNX, with tf2onnx's TF.js support.

This is the Python-API equivalent of ``python -m tf2onnx.convert --tfjs model.json``: tf2onnx
reads the graph and weights itself (``tf2onnx.tfjs_utils``); no subprocess, no tensorflowjs
package. Only graph models are supported (not TF.js layers models), as in tf2onnx.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError

__all__ = ["convert_tfjs", "read_tfjs_model_json"]


def read_tfjs_model_json(model_json_path) -> dict:
    """Parse and sanity-check a TF.js model.json (plain or gzip-compressed). Raises OnnxPoseError."""
    path = Path(model_json_path)
    if path.is_dir():
        path = path / "model.json"
    if not path.is_file():
        raise OnnxPoseError(path, "TF.js model.json not found")
    try:
        raw = path.read_bytes()
        model = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError, EOFError) as exc:
        raise OnnxPoseError(path, f"not a TF.js model.json (cannot parse JSON: {exc})") from exc
    if not isinstance(model, dict) or not isinstance(model.get("modelTopology"), dict):
        raise OnnxPoseError(path, "not a TF.js model.json (no modelTopology)")
    topology = model["modelTopology"]
    fmt = model.get("format") or topology.get("format")
    if fmt == "layers-model" or (fmt is None and "keras_version" in topology):
        raise OnnxPoseError(path, "TF.js layers model: only graph models can be converted "
                                  "(convert it to a graph model with tensorflowjs_converter first)")
    if fmt not in (None, "graph-model"):
        raise OnnxPoseError(path, f"unsupported TF.js model format {fmt!r}")
    if not isinstance(topology.get("node"), list) or not topology["node"]:
        raise OnnxPoseError(path, "TF.js graph model has no nodes")
    manifest = model.get("weightsManifest")
    if not isinstance(manifest, list) or not manifest:
        raise OnnxPoseError(path, "TF.js graph model has no weightsManifest")
    if len(manifest) > 1:  # tf2onnx reads only the first weight group
        raise OnnxPoseError(path, f"TF.js model has {len(manifest)} weight groups; tf2onnx supports one")
    expected, actual, has_strings = 0, 0, False
    for group in manifest:
        for shard in group.get("paths", []):
            shard_path = path.parent / shard
            if not shard_path.is_file():
                raise OnnxPoseError(path, f"weight shard {shard} is missing next to model.json")
            actual += shard_path.stat().st_size
        for weight in group.get("weights", []):
            try:
                dtype = weight.get("quantization", {}).get("dtype", weight["dtype"])
                if dtype == "string":
                    has_strings = True
                    continue
                expected += int(np.prod(weight["shape"], dtype=np.int64)) * np.dtype(dtype).itemsize
            except (KeyError, TypeError, ValueError) as exc:
                raise OnnxPoseError(path, f"bad weightsManifest entry {weight!r:.80}: {exc}") from exc
    gzipped = raw[:2] == b"\x1f\x8b"  # compressed shards: sizes cannot be checked here
    if not has_strings and not gzipped and expected != actual:
        raise OnnxPoseError(path, f"weight shards hold {actual} bytes but weightsManifest describes {expected}")
    return model


def _read_tfjs_weight(weight, weights_data, offset):
    """tf2onnx's ``read_tfjs_weight`` without ``np.product`` (removed in numpy 2)."""
    from tf2onnx import tfjs_utils

    name = weight["name"]
    count = int(np.prod(weight["shape"], dtype=np.int64))
    if weight["dtype"] == "string":
        strings, num_bytes = tfjs_utils.read_string_weight(weights_data, offset, count)
        return name, np.array(strings).reshape(weight["shape"]), num_bytes
    np_dtype = np.dtype(weight["dtype"])
    if "quantization" in weight:
        q_info = weight["quantization"]
        q_dtype = np.dtype(q_info["dtype"])
        arr = np.frombuffer(weights_data, dtype=q_dtype, count=count, offset=offset)
        num_bytes = arr.nbytes
        if "scale" in q_info:
            arr = arr.astype(np_dtype) * q_info["scale"] + q_info["min"]
        else:
            arr = arr.astype(np_dtype)
    else:
        arr = np.frombuffer(weights_data, dtype=np_dtype, count=count, offset=offset)
        num_bytes = arr.nbytes
    return name, arr.reshape(weight["shape"]), num_bytes


@contextlib.contextmanager
def _numpy2_compat():
    from tf2onnx import tfjs_utils

    original = tfjs_utils.read_tfjs_weight
    tfjs_utils.read_tfjs_weight = _read_tfjs_weight
    try:
        yield
    finally:
        tfjs_utils.read_tfjs_weight = original


def convert_tfjs(model_json_path, opset: int = 17):
    """Convert a TF.js graph model to an ``onnx.ModelProto``.

    ``model_json_path``: the model.json (or its directory); the weight shards must lie beside it.
    Input and output names are the graph's (``signature`` keys when model.json has one, e.g.
    ``sub_2:0``). Raises OnnxPoseError(path, reason) for a missing, malformed or unconvertible model.
    """
    path = Path(model_json_path)
    if path.is_dir():
        path = path / "model.json"
    read_tfjs_model_json(path)  # clear errors for the common problems before tf2onnx sees it

    import tensorflow as tf
    from tf2onnx import convert as tf2onnx_convert

    try:
        with _numpy2_compat(), tf.device("/cpu:0"):
            model_proto, _ = tf2onnx_convert._convert_common(  # noqa: SLF001 - tf2onnx's --tfjs path
                None,
                name=os.fspath(path),
                continue_on_error=False,
                opset=opset,
                tfjs_path=os.fspath(path),
                input_names=None,
                output_names=None,
            )
    except OnnxPoseError:
        raise
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises many types
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise OnnxPoseError(path, f"tf2onnx cannot convert this TF.js model: {type(exc).__name__}: {reason}") from exc
    return model_proto
