"""What a built model does around its decoder, as ONNX ops (numpy reference, same names:
``onnxpose.reference.pose_boxes``).

Input (``--input image``): the model input becomes ``image`` uint8 [N,H,W,3] RGB, any H and W;
``append_image_input`` resizes it exactly as PIL's BILINEAR resize (``pil_resize``), stretched
or letterboxed, converts it to the backbone's dtype and normalization, pads (letterbox) with
the backbone's zero value and feeds the backbone's original input tensor.
Output (every build): ``append_model_outputs`` maps the decoder's keypoints (backbone pixels)
to the input image's pixels, adds one box per pose and lays the outputs out (onnxpose or
MoveNet).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.pil_resize import image_size, pil_resize
from onnxpose.spec import BATCH, IMAGE_INPUT_NAME, MultiPoseSettings

F32 = np.float32


def letterbox_geometry(b: GraphBuilder, image_hw, backbone_hw, resize: str):
    """(resized_h, resized_w, top, left), each int64 [1]: where the resized image sits."""
    bh, bw = backbone_hw
    if resize == "stretch":
        return tuple(b.const(np.array([v], np.int64), f"geometry_{n}")
                     for n, v in (("resized_h", bh), ("resized_w", bw), ("top", 0), ("left", 0)))
    height = b.cast(image_hw[0], np.float64, "image_height_float")
    width = b.cast(image_hw[1], np.float64, "image_width_float")
    f64 = lambda v, n: gs.Constant(b.name(n), np.array(v, np.float64).reshape(()))  # noqa: E731
    scale = b.minimum(b.div(f64(bh, "backbone_h"), height, "scale_h"),
                      b.div(f64(bw, "backbone_w"), width, "scale_w"), "letterbox_scale")

    def side(size, limit, name):
        rounded = b.floor(b.add(b.mul(size, scale, f"{name}_scaled"), f64(0.5, f"{name}_half"),
                                f"{name}_half_up"), f"{name}_rounded")
        clipped = b.minimum(b.maximum(rounded, f64(1.0, f"{name}_min"), f"{name}_at_least_1"),
                            f64(float(limit), f"{name}_max"), f"{name}_clipped")
        return b.cast(clipped, np.int64, name)

    new_h, new_w = side(height, bh, "resized_h"), side(width, bw, "resized_w")
    top = b.div(b.sub(np.int64(bh), new_h, "pad_h"), np.int64(2), "top")
    left = b.div(b.sub(np.int64(bw), new_w, "pad_w"), np.int64(2), "left")
    return new_h, new_w, top, left


def normalize(b: GraphBuilder, pixels, dtype: str, scale_offset):
    """uint8 pixels -> the backbone's dtype: uint8 as is, float ``pixel * scale + offset``."""
    if dtype == "uint8":
        return pixels
    scale, offset = scale_offset
    floats = b.cast(pixels, F32, "pixels_float")
    return b.add(b.mul(floats, F32(scale), "pixels_scaled"), F32(offset), "pixels_normalized")


def pad_to_backbone(b: GraphBuilder, pixels, backbone_hw, geometry):
    """Pad [N,h,w,3] to [N,bh,bw,3] with zeros at (top, left)."""
    new_h, new_w, top, left = geometry
    bottom = b.sub(b.sub(np.int64(backbone_hw[0]), new_h, "pad_h_total"), top, "bottom")
    right = b.sub(b.sub(np.int64(backbone_hw[1]), new_w, "pad_w_total"), left, "right")
    zero = b.const(np.array([0], np.int64), "pad_zero")
    pads = b.concat([zero, top, left, zero, zero, bottom, right, zero], 0, "letterbox_pads")
    return b.pad(pixels, pads, "letterboxed", value=None)


def append_image_input(graph: gs.Graph, backbone_input: gs.Variable, backbone_hw, layout: str,
                       dtype: str, scale_offset, resize: str):
    """Make ``image`` the graph's input and compute ``backbone_input`` from it; returns
    (image_hw int64 [1] each, geometry)."""
    b = GraphBuilder(graph, "image_input/")
    image = gs.Variable(IMAGE_INPUT_NAME, np.uint8, [BATCH, "H", "W", 3])
    image_hw = image_size(b, image, "image")
    geometry = letterbox_geometry(b, image_hw, backbone_hw, resize)
    resized = pil_resize(b, image, backbone_hw if resize == "stretch" else geometry[:2])
    pixels = normalize(b, resized, dtype, scale_offset)
    if resize == "letterbox":
        pixels = pad_to_backbone(b, pixels, backbone_hw, geometry)
    if layout == "NCHW":
        pixels = b.transpose(pixels, (0, 3, 1, 2), "pixels_nchw")
    producer = pixels.inputs[0]
    producer.outputs = [backbone_input]
    graph.inputs = [image]
    return image_hw, geometry


def map_keypoints_to_image(b: GraphBuilder, keypoints, image_hw, geometry):
    """(y - top) * H / resized_h, (x - left) * W / resized_w; score unchanged."""
    new_h, new_w, top, left = (b.cast(g, F32, f"{n}_float") for g, n in
                               zip(geometry, ("resized_h", "resized_w", "top", "left")))
    height, width = (b.cast(v, F32, f"{n}_float") for v, n in zip(image_hw, ("height", "width")))
    y, x, score = b.split(keypoints, [1, 1, 1], -1, "decoded_yxs")
    y = b.mul(b.sub(y, top, "y_unpadded"), b.div(height, new_h, "y_scale"), "y_image")
    x = b.mul(b.sub(x, left, "x_unpadded"), b.div(width, new_w, "x_scale"), "x_image")
    return b.concat([y, x, score], -1, "keypoints_image"), (height, width)


def pose_boxes(b: GraphBuilder, keypoints, pose_scores, valid, box_threshold: float):
    """[..., 5]: extent of the keypoints scoring >= box_threshold and the pose score; zeros
    where not ``valid`` or no keypoint counts."""
    y, x, score = (b.squeeze(t, [-1], f"box_{n}") for t, n in
                   zip(b.split(keypoints, [1, 1, 1], -1, "box_yxs"), "yxs"))
    counted = b.greater_or_equal(score, F32(box_threshold), "box_counted")
    inf = F32(np.inf)
    lows = [b.reduce("ReduceMin", b.where(counted, t, inf, f"box_{n}_lo_in"), [-1],
                     f"box_{n}_min", keepdims=True) for t, n in ((y, "y"), (x, "x"))]
    highs = [b.reduce("ReduceMax", b.where(counted, t, -inf, f"box_{n}_hi_in"), [-1],
                      f"box_{n}_max", keepdims=True) for t, n in ((y, "y"), (x, "x"))]
    box = b.concat([*lows, *highs, b.unsqueeze(pose_scores, [-1], "box_score")], -1, "box_raw")
    any_counted = b.reduce_max(b.cast(counted, F32, "box_counted_float"), [-1], "box_any",
                               keepdims=True)
    keep = b.logical_and(b.greater(any_counted, F32(0.5), "box_nonempty"),
                         b.unsqueeze(valid, [-1], "box_valid"), "box_keep")
    return b.where(keep, box, F32(0.0), "boxes")


def append_model_outputs(graph: gs.Graph, decoded: dict, settings, io, image_hw, geometry):
    """The model's outputs (``onnxpose.spec.model_outputs``) from the decoder's (onnxpose
    layout, backbone pixels); returns them by name."""
    b = GraphBuilder(graph, "outputs/")
    multi = isinstance(settings, MultiPoseSettings)
    keypoints, (height, width) = map_keypoints_to_image(b, decoded["keypoints"], image_hw, geometry)
    if multi:
        scores, count = decoded["pose_scores"], decoded["pose_count"]
        rows = b.range_(b.scalar(0, np.int32, "row0"), b.scalar(settings.max_poses, np.int32,
                        "rows"), b.scalar(1, np.int32, "row1"), "row_index")
        valid = b.less(b.unsqueeze(rows, [0], "row_index_b"), b.unsqueeze(count, [1], "count_b"),
                       "row_valid")
        keypoints = b.where(b.unsqueeze(valid, [2, 3], "row_valid_kp"), keypoints, F32(0.0),
                            "keypoints_masked")
    else:
        scores = decoded["pose_score"]
        valid = b.op("ConstantOfShape", [b.shape(scores, "pose_score_shape")], "pose_valid",
                     {"value": onnx.helper.make_tensor("true", onnx.TensorProto.BOOL, [1], [True])})
    boxes = pose_boxes(b, keypoints, scores, valid, io.box_threshold)
    if io.layout == "movenet":
        unit = b.concat([height, width, b.const(np.ones(1, F32), "one")], 0, "unit_kp")
        normalized = b.div(keypoints, unit, "keypoints_normalized")
        if not multi:
            return {"output_0": b.unsqueeze(normalized, [1], "output_0")}
        unit_box = b.concat([height, width, height, width, b.const(np.ones(1, F32), "one_b")], 0,
                            "unit_box")
        flat = b.reshape(normalized, [0, 0, 51], "keypoints_flat")
        return {"output_0": b.concat([flat, b.div(boxes, unit_box, "boxes_normalized")], -1,
                                     "output_0")}
    out = {"keypoints": keypoints}
    if multi:
        out.update(pose_scores=b.identity(scores, "pose_scores"),
                   pose_count=b.identity(count, "pose_count"))
    else:
        out["pose_score"] = b.identity(scores, "pose_score")
    out["boxes"] = boxes
    return out
