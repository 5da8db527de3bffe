"""PIL's ``Image.resize(size, BILINEAR)`` as standard ONNX ops, for any input size.

The graph form of ``onnxpose.reference.pil_resize`` (same function names): the per-axis
filter taps and fixed-point weights are computed in the graph (float64) from the input's
runtime height and width, then each separable pass is a ``Gather`` of the K taps, an int32
multiply-add (``ReduceSum``) and Pillow's rounding. Pillow 13 runs the horizontal pass first
except when the height shrinks and the width grows (found empirically: then its result is
the vertical-first one), so the graph picks the order with an ``If``. No ``Resize`` op:
ONNX ``Resize`` with ``antialias=1`` (opset 18+) uses another window and rounding and is up
to 13 levels off PIL on real photos.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder

PRECISION_BITS = 22  # Pillow: 32 - 8 - 2


def triangle(b: GraphBuilder, t, name: str):
    """max(1 - |t|, 0)."""
    one = b.scalar(1.0, np.float64, f"{name}_one")
    return b.relu(b.sub(one, b.op("Abs", [t], f"{name}_abs"), f"{name}_1_minus"), name)


def pixel_centers(b: GraphBuilder, out_size, name: str):
    """[out, 1] float64: 0.5, 1.5, ...; ``out_size`` an int or an int64 [1] tensor."""
    if isinstance(out_size, (int, np.integer)):
        return gs.Constant(b.name(f"{name}_pixel_centers"),
                           (np.arange(out_size) + 0.5).astype(np.float64).reshape(-1, 1))
    indices = b.range_(b.scalar(0, np.int64, f"{name}_c0"), b.squeeze(out_size, [0], f"{name}_out"),
                       b.scalar(1, np.int64, f"{name}_c1"), f"{name}_pixel_indices")
    centers = b.add(b.cast(indices, np.float64, f"{name}_pixel_indices_float"),
                    b.scalar(0.5, np.float64, f"{name}_c_half"), f"{name}_pixel_centers_flat")
    return b.unsqueeze(centers, [1], f"{name}_pixel_centers")


def resize_coefficients(b: GraphBuilder, in_size, out_size, name: str):
    """(taps int64 [out, K], weights int32 [out, K]) for an axis of runtime length ``in_size``
    (int64 [1]) resized to ``out_size`` (int, or int64 [1] at runtime), as Pillow's
    ``precompute_coeffs``."""
    f64 = np.float64
    size = b.cast(in_size, f64, f"{name}_in_size")
    out = (b.scalar(out_size, f64, f"{name}_out_size") if isinstance(out_size, (int, np.integer))
           else b.cast(out_size, f64, f"{name}_out_size"))
    scale = b.div(size, out, f"{name}_scale")
    filterscale = b.maximum(scale, b.scalar(1.0, f64, f"{name}_unit"), f"{name}_filterscale")
    support = filterscale
    ksize = b.add(b.mul(b.cast(b.op("Ceil", [support], f"{name}_ceil_support"), np.int64,
                               f"{name}_ceil_support_int"), np.int64(2), f"{name}_2k"),
                  np.int64(1), f"{name}_ksize")
    half = b.scalar(0.5, f64, f"{name}_half")
    center = b.mul(pixel_centers(b, out_size, name), scale, f"{name}_center")             # [out,1]
    xmin = b.maximum(b.floor(b.add(b.sub(center, support, f"{name}_lo"), half, f"{name}_lo_half"),
                             f"{name}_lo_floor"), b.scalar(0.0, f64, f"{name}_zero"), f"{name}_xmin")
    xmax = b.minimum(b.floor(b.add(b.add(center, support, f"{name}_hi"), half, f"{name}_hi_half"),
                             f"{name}_hi_floor"), size, f"{name}_xmax")
    count = b.sub(xmax, xmin, f"{name}_count")
    offsets = b.cast(b.range_(b.scalar(0, np.int64, f"{name}_r0"),
                              b.squeeze(ksize, [0], f"{name}_ksize_scalar"),
                              b.scalar(1, np.int64, f"{name}_r1"), f"{name}_offsets_int"),
                     f64, f"{name}_offsets")                                             # [K]
    taps = b.add(xmin, offsets, f"{name}_taps_float")                                    # [out,K]
    t = b.div(b.add(b.sub(taps, center, f"{name}_dist"), half, f"{name}_dist_half"),
              filterscale, f"{name}_t")
    weights = b.where(b.less(offsets, count, f"{name}_in_window"), triangle(b, t, f"{name}_tri"),
                      b.scalar(0.0, f64, f"{name}_w0"), f"{name}_weights_window")
    total = b.reduce_sum(weights, [1], f"{name}_total", keepdims=True)
    total = b.where(b.greater(total, b.scalar(0.0, f64, f"{name}_t0"), f"{name}_total_pos"), total,
                    b.scalar(1.0, f64, f"{name}_t1"), f"{name}_total_safe")
    fixed = b.floor(b.add(b.mul(b.div(weights, total, f"{name}_normalized"),
                                b.scalar(float(1 << PRECISION_BITS), f64, f"{name}_precision"),
                                f"{name}_scaled"), half, f"{name}_scaled_half"), f"{name}_fixed")
    last = b.sub(size, b.scalar(1.0, f64, f"{name}_one_px"), f"{name}_last")
    taps = b.cast(b.minimum(taps, last, f"{name}_taps_clamped"), np.int64, f"{name}_taps")
    return taps, b.cast(fixed, np.int32, f"{name}_weights")


def round_to_uint8(b: GraphBuilder, sums, name: str):
    """Pillow's rounding of the fixed-point sums: (s + 2^21) >> 22, clipped to 0..255."""
    i32 = np.int32
    shifted = b.div(b.add(sums, b.scalar(1 << (PRECISION_BITS - 1), i32, f"{name}_half"),
                          f"{name}_half_up"),
                    b.scalar(1 << PRECISION_BITS, i32, f"{name}_one"), f"{name}_shifted")
    clipped = b.maximum(b.minimum(shifted, b.scalar(255, i32, f"{name}_255"), f"{name}_max255"),
                        b.scalar(0, i32, f"{name}_0"), f"{name}_clipped")
    return b.cast(clipped, np.uint8, name)


def resize_pass(b: GraphBuilder, pixels, taps, weights, axis: int, name: str):
    """One pass along ``axis`` (1: rows, 2: columns) of uint8 [N,H,W,3]."""
    gathered = b.cast(b.gather(pixels, taps, axis, f"{name}_taps"), np.int32, f"{name}_int")
    shape = [0, 0, 1] if axis == 2 else [0, 0, 1, 1]  # weights [out,K] -> broadcast at axis
    weighted = b.mul(gathered, b.reshape(weights, shape, f"{name}_weights_b"), f"{name}_weighted")
    return round_to_uint8(b, b.reduce_sum(weighted, [axis + 1], f"{name}_sums"), name)


def image_size(b: GraphBuilder, images, name: str = "image"):
    """(H, W) of uint8 [N,H,W,3] at runtime, each int64 [1]."""
    shape = b.shape(images, f"{name}_shape")
    return (b.slice(shape, [1], [2], [0], f"{name}_height"),
            b.slice(shape, [2], [3], [0], f"{name}_width"))


def pil_resize(b: GraphBuilder, images, size_hw, name: str = "resize"):
    """uint8 [N,H,W,3] (H, W at runtime) -> uint8 [N,h,w,3] as PIL's resize((w, h), BILINEAR);
    h and w ints or int64 [1] tensors."""
    out_h, out_w = size_hw
    in_h, in_w = image_size(b, images, f"{name}_input")
    taps_x, weights_x = resize_coefficients(b, in_w, out_w, f"{name}_x")
    taps_y, weights_y = resize_coefficients(b, in_h, out_h, f"{name}_y")

    def passes(g: GraphBuilder, order):
        pixels = images
        for axis in order:
            taps, weights = (taps_x, weights_x) if axis == 2 else (taps_y, weights_y)
            pixels = resize_pass(g, pixels, taps, weights, axis, f"{name}_axis{axis}")
        return pixels

    def branch(label, order):
        g = b.branch(f"{name}_{label}")
        out = passes(g, order)
        out.dtype = np.uint8
        g.graph.outputs = [out]
        return g.graph

    as_int = lambda v, n: v if not isinstance(v, (int, np.integer)) else b.const(  # noqa: E731
        np.array([v], np.int64), n)
    vertical_first = b.logical_and(b.greater(in_h, as_int(out_h, f"{name}_out_h"), f"{name}_v_shrinks"),
                                   b.less(in_w, as_int(out_w, f"{name}_out_w"), f"{name}_h_grows"),
                                   f"{name}_vertical_first_vec")
    cond = b.squeeze(vertical_first, [0], f"{name}_vertical_first")
    out = b.op("If", [cond], f"{name}_passes",
               {"then_branch": branch("vertical_first", (1, 2)),
                "else_branch": branch("horizontal_first", (2, 1))}, dtype=np.uint8)
    return out
