"""Small synthetic models for tests: PoseNet-like ONNX graphs and SavedModels, a Keras
classifier, and mutators that break model files for fuzzing.

``toy_posenet_onnx`` makes a tiny fully convolutional "PoseNet" directly with
onnx.helper: each head is a 1x1 convolution of the input with its own stride,
so heads can be given any channel count, grid, layout, dtype (float32, float16,
uint8, int8, per-tensor or per-channel), a dynamic input size or a 2-D shape,
including the broken variants that head discovery must refuse.
``toy_posenet_savedmodel`` writes the same kind of model as a TF SavedModel.
``mutate_bytes``, ``tflite_structure_positions`` and ``proto_mutate`` damage
files (plain, flatbuffer-aware and protobuf-aware edits).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


HEAD_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16,
              "uint8": TensorProto.UINT8, "int8": TensorProto.INT8}


def _conv_head(name: str, channels: int, stride: int, layout: str, rng, nodes, inits,
               source: str, dtype: str, per_channel: bool = False, flatten: bool = False):
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (channels, 3, 1, 1)).astype(np.float32),
                                     f"{name}_w")
    inits.append(weight)
    final = name
    steps = []  # what follows the convolution: "transpose", "quantize"/"cast", "flatten"
    if layout == "NHWC":
        steps.append("transpose")
    if dtype in ("uint8", "int8"):
        steps.append("quantize")
    elif dtype == "float16":
        steps.append("cast")
    if flatten:
        steps.append("flatten")
    out = f"{name}_conv" if steps else final
    nodes.append(helper.make_node("Conv", [source, weight.name], [out],
                                  strides=[stride, stride], kernel_shape=[1, 1]))
    for i, step in enumerate(steps):
        target = final if i == len(steps) - 1 else f"{name}_{step}"
        if step == "transpose":
            nodes.append(helper.make_node("Transpose", [out], [target], perm=[0, 2, 3, 1]))
        elif step == "cast":
            nodes.append(helper.make_node("Cast", [out], [target], to=TensorProto.FLOAT16))
        elif step == "flatten":
            nodes.append(helper.make_node("Flatten", [out], [target], axis=1))
        else:
            axis = 3 if layout == "NHWC" else 1
            scale_value = (np.linspace(0.04, 0.06, channels, dtype=np.float32) if per_channel
                           else np.array(0.05, np.float32))
            zero_value = np.full(scale_value.shape, 128 if dtype == "uint8" else -3,
                                 dtype=np.dtype(dtype))
            scale = numpy_helper.from_array(scale_value, f"{name}_scale")
            zero = numpy_helper.from_array(zero_value, f"{name}_zero_point")
            inits += [scale, zero]
            nodes.append(helper.make_node("QuantizeLinear", [out, scale.name, zero.name], [target],
                                          **({"axis": axis} if per_channel else {})))
        out = target


def toy_posenet_onnx(input_hw=(65, 65), heads=None, layout="NHWC", head_dtype="float32",
                     input_dtype="float32", seed=0, batch=1, dynamic_input=False, flatten=(),
                     per_channel=False, input_channels=3) -> onnx.ModelProto:
    """A tiny PoseNet-like model.

    ``heads``: list of (output name, channels, stride); default heatmaps (17),
    short offsets (34) and displacements (64), all at stride 16.
    ``head_dtype``: float32, float16, uint8 or int8 (quantized heads via QuantizeLinear,
    scale 0.05, zero point 128 for uint8 and -3 for int8; ``per_channel``: one scale per
    channel instead). ``dynamic_input``: symbolic input height and width (and head grids).
    ``flatten``: names of heads output as 2-D ``[N, C*h*w]`` tensors instead of 4-D ones.
    ``input_channels``: 3 (RGB) or something else for a non-RGB model.
    """
    rng = np.random.default_rng(seed)
    heads = heads or [("heatmaps", 17, 16), ("offsets", 34, 16), ("displacements", 64, 16)]
    h, w = input_hw
    c = input_channels
    ih, iw = ("height", "width") if dynamic_input else (h, w)
    in_shape = [batch, ih, iw, c] if layout == "NHWC" else [batch, c, ih, iw]
    elem = TensorProto.UINT8 if input_dtype == "uint8" else TensorProto.FLOAT
    nodes, inits = [], []
    source = "image"
    if input_dtype == "uint8":
        nodes.append(helper.make_node("Cast", [source], ["image_float"], to=TensorProto.FLOAT))
        source = "image_float"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [source], ["image_nchw"], perm=[0, 3, 1, 2]))
        source = "image_nchw"
    if c != 3:  # the heads are convolutions of three channels: take (or repeat) them
        nodes.append(helper.make_node("Slice", [source, "rgb_start", "rgb_end", "rgb_axis"],
                                      ["image_rgb"]))
        inits += [numpy_helper.from_array(np.array([0], np.int64), "rgb_start"),
                  numpy_helper.from_array(np.array([3], np.int64), "rgb_end"),
                  numpy_helper.from_array(np.array([1], np.int64), "rgb_axis")]
        if c < 3:
            nodes[-1] = helper.make_node("Tile", [source, "rgb_repeats"], ["image_rgb"])
            inits[-3:] = [numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "rgb_repeats")]
        source = "image_rgb"
    outputs = []
    for name, channels, stride in heads:
        _conv_head(name, channels, stride, layout, rng, nodes, inits, source, head_dtype,
                   per_channel, name in flatten)
        if dynamic_input:
            grid = (f"{name}_h", f"{name}_w")
        else:
            grid = (math.ceil(h / stride), math.ceil(w / stride))
        shape = [batch, *grid, channels] if layout == "NHWC" else [batch, channels, *grid]
        if name in flatten:
            shape = [batch, None if dynamic_input else channels * grid[0] * grid[1]]
        outputs.append(helper.make_tensor_value_info(name, HEAD_TYPES[head_dtype], shape))
    graph = helper.make_graph(nodes, "toy_posenet",
                              [helper.make_tensor_value_info("image", elem, in_shape)],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def keras_classifier_savedmodel(directory) -> None:
    """A small Keras image classifier (not a pose model) saved as a TF SavedModel."""
    import tensorflow as tf
    inputs = tf.keras.Input((64, 64, 3))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax")(x)
    tf.keras.Model(inputs, outputs).export(str(directory), verbose=False)


def toy_posenet_savedmodel(directory, input_hw=(33, 33), stride=16, seed=0) -> None:
    """A tiny PoseNet-like TF SavedModel (tf.Module, serving_default signature).

    Float32 NHWC input ``image``; outputs ``heatmaps`` (17), ``offsets`` (34) and
    ``displacements`` (64), each a strided 1x1 convolution of the input.
    """
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    h, w = input_hw

    class ToyPoseNet(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernels = {name: tf.Variable(rng.normal(0, 0.5, (1, 1, 3, c)).astype(np.float32),
                                              name=f"{name}_kernel")
                            for name, c in (("heatmaps", 17), ("offsets", 34), ("displacements", 64))}

        @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name="image")])
        def serve(self, image):
            return {name: tf.nn.conv2d(image, kernel, strides=stride, padding="SAME")
                    for name, kernel in self.kernels.items()}

    module = ToyPoseNet()
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})


# --------------------------------------------------------------------------------------------
# Broken models: mutators for fuzzing the builder (tests/test_reliability_fuzz.py,
# benchmarks/fuzz_build.py). Plain byte edits, flatbuffer-aware edits (TFLite: hit the tables,
# not the weights) and protobuf-aware edits (ONNX, SavedModel: keep the wire format valid and
# change one value deep inside, fixing every enclosing length).

#: 32-bit values that break offsets, lengths, counts and indices
INTERESTING_U32 = (0, 1, 2, 3, 4, 7, 8, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                   0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
#: varint values for protobuf fields (enum values, dims, indices, counts; 2**64-1 is -1)
INTERESTING_VARINTS = (0, 1, 2, 3, 7, 17, 34, 64, 127, 128, 255, 256, 65535, 2**31 - 1, 2**31,
                       2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**64 - 1, 2**64 - 2)
BYTE_MUTATIONS = ("truncate", "flip", "set_u32", "delete", "insert", "zero")


def mutate_bytes(data: bytes, op: str, position: int, value: int = 0, length: int = 1) -> bytes:
    """One edit of ``data`` at ``position`` (taken modulo the length).

    ``truncate``: keep ``position`` bytes; ``flip``: xor bit ``value % 8``; ``set_u32``: the
    4-byte aligned little-endian word := ``value``; ``delete``/``zero``: ``length`` bytes;
    ``insert``: ``length`` bytes of ``value & 0xff``.
    """
    out = bytearray(data)
    if not out:
        return bytes(out)
    position %= len(out)
    if op == "truncate":
        del out[position:]
    elif op == "flip":
        out[position] ^= 1 << (value % 8)
    elif op == "set_u32":
        position &= ~3
        out[position:position + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    elif op == "delete":
        del out[position:position + length]
    elif op == "zero":
        out[position:position + length] = bytes(len(out[position:position + length]))
    elif op == "insert":
        out[position:position] = bytes([value & 0xFF]) * length
    else:
        raise ValueError(f"unknown byte mutation {op!r}")
    return bytes(out)


def _fb_u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 4], "little")


def _fb_field(data: bytes, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the flatbuffer table at ``table``, or None."""
    vtable = table - int.from_bytes(data[table:table + 4], "little", signed=True)
    vtable_size = int.from_bytes(data[vtable:vtable + 2], "little")
    slot = 4 + 2 * index
    if slot + 2 > vtable_size:
        return None
    offset = int.from_bytes(data[vtable + slot:vtable + slot + 2], "little")
    return table + offset if offset else None


def tflite_weight_ranges(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of a valid TFLite file's constant buffers (the weights)."""
    root = _fb_u32(data, 0)
    field = _fb_field(data, root, 4)  # Model.buffers
    if field is None:
        return []
    vector = field + _fb_u32(data, field)
    ranges = []
    for i in range(_fb_u32(data, vector)):
        element = vector + 4 + 4 * i
        buffer = element + _fb_u32(data, element)
        data_field = _fb_field(data, buffer, 0)  # Buffer.data
        if data_field is not None:
            start = data_field + _fb_u32(data, data_field)
            ranges.append((start + 4, start + 4 + _fb_u32(data, start)))
    return sorted(ranges)


def tflite_structure_positions(data: bytes) -> list[int]:
    """Byte positions of a valid TFLite file outside its weights: tables, vtables, vectors."""
    positions, cursor = [], 0
    for start, end in tflite_weight_ranges(data):
        positions.extend(range(cursor, start))
        cursor = max(cursor, end)
    positions.extend(range(cursor, len(data)))
    return positions


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def proto_parse(data: bytes, depth: int = 0, max_message: int = 1 << 20) -> list | None:
    """Protobuf wire format → [[number, wire_type, value]]; None if ``data`` is not a message.

    A length-delimited value that itself parses as a message (and is at most ``max_message``
    bytes) becomes a nested list; otherwise it stays ``bytes``.
    """
    fields, pos = [], 0
    try:
        while pos < len(data):
            key, pos = _read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                return None
            if wire == 0:
                value, pos = _read_varint(data, pos)
            elif wire == 1:
                value, pos = data[pos:pos + 8], pos + 8
            elif wire == 5:
                value, pos = data[pos:pos + 4], pos + 4
            elif wire == 2:
                size, pos = _read_varint(data, pos)
                value, pos = data[pos:pos + size], pos + size
                nested = (proto_parse(value, depth + 1, max_message)
                          if 0 < size <= max_message and depth < 32 else None)
                if nested:
                    value = nested
            else:
                return None
            if pos > len(data):
                return None
            fields.append([number, wire, value])
    except ValueError:
        return None
    return fields


def proto_serialize(fields: list) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(value)
        elif wire == 2:
            payload = proto_serialize(value) if isinstance(value, list) else value
            out += _varint(len(payload)) + payload
        else:
            out += value
    return bytes(out)


def proto_leaves(fields: list, path=()) -> list[tuple]:
    """Paths (tuples of field indices) to every field, nested messages included."""
    paths = []
    for i, (_, _, value) in enumerate(fields):
        paths.append(path + (i,))
        if isinstance(value, list):
            paths.extend(proto_leaves(value, path + (i,)))
    return paths


PROTO_MUTATIONS = ("varint", "bits", "bytes_flip", "bytes_cut", "bad_utf8", "drop", "duplicate",
                   "renumber")


def proto_mutate(data: bytes, leaf: int, op: str, value: int = 0,
                 fields: list | None = None) -> bytes:
    """Edit the ``leaf``-th field (see proto_leaves, taken modulo their number) of a protobuf.

    ``varint``: a varint field := INTERESTING_VARINTS[value]; ``bits``: xor bit ``value`` of
    a fixed-size or varint value; ``bytes_flip``/``bytes_cut``: flip a byte of / truncate a
    bytes or string value (a nested message is treated as its bytes); ``bad_utf8``: append an
    invalid UTF-8 byte; ``drop``/``duplicate``: remove / repeat the field; ``renumber``: give
    it field number ``value % 40 + 1``. Enclosing lengths are recomputed.
    """
    import copy
    fields = copy.deepcopy(fields if fields is not None else proto_parse(data))
    if not fields:
        return mutate_bytes(data, "flip", value, value)
    paths = proto_leaves(fields)
    path = paths[leaf % len(paths)]
    parent = fields
    for index in path[:-1]:
        parent = parent[index][2]
    entry = parent[path[-1]]
    number, wire, current = entry
    if op == "drop":
        del parent[path[-1]]
    elif op == "duplicate":
        parent.insert(path[-1], copy.deepcopy(entry))
    elif op == "renumber":
        entry[0] = value % 40 + 1
    elif op == "varint":
        if wire == 0:
            entry[2] = INTERESTING_VARINTS[value % len(INTERESTING_VARINTS)]
        else:  # make it a varint field with the same number
            entry[1], entry[2] = 0, INTERESTING_VARINTS[value % len(INTERESTING_VARINTS)]
    elif op == "bits":
        if wire == 0:
            entry[2] = current ^ (1 << (value % 64))
        elif wire in (1, 5):
            entry[2] = mutate_bytes(current, "flip", value // 8, value)
        else:
            raw = proto_serialize(current) if isinstance(current, list) else current
            entry[2] = mutate_bytes(raw, "flip", value // 8, value) if raw else b"\x01"
    elif op in ("bytes_flip", "bytes_cut", "bad_utf8"):
        if wire != 2:
            entry[1], entry[2] = 2, b"\xff"
        else:
            raw = proto_serialize(current) if isinstance(current, list) else current
            if op == "bytes_flip":
                entry[2] = mutate_bytes(raw, "flip", value // 8, value) if raw else b"\x80"
            elif op == "bytes_cut":
                entry[2] = raw[:value % (len(raw) + 1)]
            else:
                entry[2] = raw + b"\xff\xfe"
    else:
        raise ValueError(f"unknown protobuf mutation {op!r}")
    return proto_serialize(fields)
