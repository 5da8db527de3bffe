"""Write a PoseNet Keras model as a SavedModel, a float TFLite file or a TF.js graph model."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.testing.posenet_models.network import HEAD_NAMES, INPUT_NAME, OUTPUT_TENSOR_NAMES


# ---------------------------------------------------------------------------------------------
# TF graph with TF.js PoseNet's names (for TFLite and TF.js)

def posenet_graph_def(model):
    """A frozen ``tf.compat.v1.GraphDef`` of a model from ``build_posenet_mobilenet``, written with
    plain TF ops and TF.js PoseNet's node names: input ``sub_2`` [1,H,W,3], outputs
    ``OUTPUT_TENSOR_NAMES``. Weights are Const nodes; strides and dilations come from the model."""
    import tensorflow as tf

    try:
        layers = [model.get_layer(layer.name) for layer in model.layers if layer.name.startswith("Conv2d_")]
        heads = [model.get_layer(name) for name in HEAD_NAMES]
    except ValueError as exc:
        raise OnnxPoseError(None, f"not a model from build_posenet_mobilenet: {exc}") from exc
    _, h, w, _ = model.inputs[0].shape
    # (name, depthwise?, kernel, bias, strides, dilations, relu6), read eagerly before tracing
    specs = []
    for layer in [*layers, *heads]:
        kernel, bias = (np.asarray(v, dtype=np.float32) for v in layer.get_weights())
        specs.append((layer.name, layer.__class__.__name__ == "DepthwiseConv2D", kernel, bias,
                      [1, *layer.strides, 1], [int(d) for d in layer.dilation_rate], layer.name not in HEAD_NAMES))

    def conv(x, spec):
        name, depthwise, kernel, bias, strides, dilations, relu6 = spec
        with tf.name_scope(name):
            if depthwise:
                y = tf.nn.depthwise_conv2d(x, tf.constant(kernel, name="depthwise_weights"), strides,
                                           "SAME", dilations=dilations, name="depthwise")
            else:
                y = tf.nn.conv2d(x, tf.constant(kernel, name="weights"), strides, "SAME",
                                 dilations=dilations, name="Conv2D")
            y = tf.nn.bias_add(y, tf.constant(bias, name="biases"), name="BiasAdd")
            return tf.nn.relu6(y, name="Relu6") if relu6 else y

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name=INPUT_NAME)], autograph=False)
    def posenet(x):
        with tf.name_scope("MobilenetV1"):
            for spec in specs[:len(layers)]:
                x = conv(x, spec)
            return [conv(x, spec) for spec in specs[len(layers):]]

    graph_def = posenet.get_concrete_function().graph.as_graph_def()
    names = {node.name for node in graph_def.node}
    missing = [n for n in (INPUT_NAME, *OUTPUT_TENSOR_NAMES) if n not in names]
    if missing:
        raise OnnxPoseError(None, f"internal: graph lacks nodes {missing}")
    return _prune_graph_def(graph_def, OUTPUT_TENSOR_NAMES)


def _prune_graph_def(graph_def, outputs):
    """Keep only the nodes that ``outputs`` depend on (drops the tf.function's Identity outputs)."""
    import tensorflow as tf

    by_name = {node.name: node for node in graph_def.node}
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for inp in by_name[name].input:
            todo.append(inp.lstrip("^").split(":")[0])
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


# ---------------------------------------------------------------------------------------------
# writers (temp sibling, then rename)

@contextlib.contextmanager
def _atomic_dir(directory):
    """Yield a temporary sibling directory; on success it replaces ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            os.rename(directory, old / "x")
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_savedmodel(model, directory) -> Path:
    """TF SavedModel of ``model``: signature ``serving_default`` with input ``sub_2`` and a dict of
    outputs keyed by ``HEAD_NAMES``. Returns ``directory``."""
    import keras
    import tensorflow as tf

    shape = [1, *model.inputs[0].shape[1:]]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(x):
        return dict(zip(HEAD_NAMES, model(x, training=False)))

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    directory = Path(directory)
    with _atomic_dir(directory) as tmp:
        with contextlib.redirect_stdout(sys.stderr):
            archive.write_out(str(tmp), verbose=False)
    return directory


def save_tflite(model, path) -> Path:
    """Float32 TFLite (no quantization) converted from ``posenet_graph_def(model)``: input ``sub_2``,
    outputs ``OUTPUT_TENSOR_NAMES`` in that order. Returns ``path``."""
    import tensorflow as tf

    graph_def = posenet_graph_def(model)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        inputs = [graph.get_tensor_by_name(f"{INPUT_NAME}:0")]
        outputs = [graph.get_tensor_by_name(f"{n}:0") for n in OUTPUT_TENSOR_NAMES]
        converter = tf.compat.v1.lite.TFLiteConverter(graph_def, inputs, outputs)
        data = converter.convert()
    return _atomic_write_bytes(path, data)


_TFJS_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.bool_): "bool"}


def _graph_def_to_tfjs(graph_def, input_names, output_names) -> tuple[dict, bytes]:
    """(model.json dict, weight bytes) of a frozen GraphDef in TF.js's graph-model format."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import types_pb2

    nodes, manifest, chunks = [], [], []
    for node in graph_def.node:
        entry = json_format.MessageToDict(node)
        if node.op == "Const":
            value = tf.make_ndarray(node.attr["value"].tensor)
            if value.dtype == np.int64:  # TF.js has no int64
                value = value.astype(np.int32)
            elif value.dtype == np.float64:
                value = value.astype(np.float32)
            if value.dtype not in _TFJS_DTYPES:
                raise OnnxPoseError(None, f"Const {node.name} has dtype {value.dtype}, not supported by TF.js")
            entry["attr"].pop("value")
            manifest.append({"name": node.name, "shape": [int(d) for d in value.shape],
                             "dtype": _TFJS_DTYPES[value.dtype]})
            chunks.append(np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes())
        nodes.append(entry)

    by_name = {node.name: node for node in graph_def.node}

    def tensor_info(name):
        node = by_name[name]
        info = {"name": f"{name}:0"}
        for key in ("T", "dtype"):
            if key in node.attr:
                info["dtype"] = types_pb2.DataType.Name(node.attr[key].type)
                break
        if "shape" in node.attr:
            info["tensorShape"] = json_format.MessageToDict(node.attr["shape"].shape)
        return info

    model_json = {
        "format": "graph-model",
        "generatedBy": tf.__version__,
        "convertedBy": "onnxpose.testing.posenet_models (own TF.js graph-model writer)",
        "signature": {
            "inputs": {f"{n}:0": tensor_info(n) for n in input_names},
            "outputs": {f"{n}:0": tensor_info(n) for n in output_names},
        },
        "modelTopology": {
            "node": nodes,
            "library": {},
            "versions": json_format.MessageToDict(graph_def.versions),
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
    }
    return model_json, b"".join(chunks)


def save_tfjs(model, directory) -> Path:
    """TF.js graph model of ``model`` (``directory/model.json`` + ``group1-shard1of1.bin``), written by
    this module's own writer from ``posenet_graph_def(model)``. Returns the path of model.json."""
    graph_def = posenet_graph_def(model)
    model_json, weight_bytes = _graph_def_to_tfjs(graph_def, [INPUT_NAME], list(OUTPUT_TENSOR_NAMES))
    directory = Path(directory)
    with _atomic_dir(directory) as tmp:
        (tmp / "group1-shard1of1.bin").write_bytes(weight_bytes)
        (tmp / "model.json").write_text(json.dumps(model_json))
    return directory / "model.json"


# ---------------------------------------------------------------------------------------------
