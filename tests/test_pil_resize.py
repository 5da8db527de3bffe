"""The in-graph resize (onnxpose.decoder.pil_resize) against PIL's Image.resize(BILINEAR) on
the real photo, its crops and rescalings: shrinking and enlarging, aspect 1:4 to 4:1 (equal bit
for bit), and Pillow 13's pass order on both sides of its boundary."""

import numpy as np
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
from PIL import Image

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.pil_resize import pil_resize
from onnxpose.reference.pil_resize import pil_resize as pil_resize_reference
from onnxpose.reference.pil_resize import resize_axis, resize_coefficients, vertical_first


def resize_session(size_hw):
    graph = gs.Graph(opset=17)
    image = gs.Variable("image", np.uint8, ["N", "H", "W", 3])
    graph.inputs = [image]
    out = pil_resize(GraphBuilder(graph), image, size_hw)
    out.dtype = np.uint8
    graph.outputs = [out]
    model = gs.export_onnx(graph.cleanup().toposort())
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def photo(test_image):
    return np.asarray(Image.open(test_image).convert("RGB"))


def sources(photo):
    """The photo, crops of aspect 1:4 .. 4:1 and rescalings 64 .. 4000 px a side."""
    pil = Image.fromarray(photo)
    yield photo
    yield photo[200:1000, 600:800]                      # 4:1 tall crop
    yield photo[500:700, 100:900]                       # 1:4 wide crop
    yield np.asarray(pil.resize((64, 96)))
    yield np.asarray(pil.resize((4000, 1000)))
    yield photo[:1, :1]


@pytest.mark.parametrize("size_hw", [(353, 481), (64, 256), (481, 121), (2000, 1500)])
def test_resize_matches_pil(photo, size_hw):
    session = resize_session(size_hw)
    for src in sources(photo):
        src = np.ascontiguousarray(src)
        got = session.run(None, {"image": src[None]})[0][0].astype(int)
        want = np.asarray(Image.fromarray(src).resize(size_hw[::-1], Image.BILINEAR)).astype(int)
        error = np.abs(got - want)
        assert (error <= 1).mean() >= 0.99, (src.shape, size_hw)
        assert error.max() <= 2, (src.shape, size_hw)
        np.testing.assert_array_equal(got, want)                # in fact: bit for bit
        np.testing.assert_array_equal(got, pil_resize_reference(src[None], size_hw)[0])


@pytest.mark.parametrize("in_hw, vertical", [
    ((199, 160), False), ((200, 160), False), ((201, 160), True),   # height drop vs 2 x width drop
    ((300, 100), True),        # both shrink, the height much more: vertical first (Pillow 13)
    ((100, 300), False), ((40, 60), False), ((300, 40), True)])      # enlarging: horizontal first
def test_pass_order_follows_pillow(photo, in_hw, vertical):
    """Pillow 13 runs the vertical pass first when the height drops by more than twice as many
    pixels as the width; here the two orders differ, and the graph's result is PIL's."""
    size_hw = (60, 90)
    src = np.ascontiguousarray(photo[300:300 + in_hw[0], 700:700 + in_hw[1]])
    assert vertical_first(*in_hw, *size_hw) == vertical
    taps_x, weights_x = resize_coefficients(in_hw[1], size_hw[1])
    taps_y, weights_y = resize_coefficients(in_hw[0], size_hw[0])
    rows_first = resize_axis(resize_axis(src[None], taps_x, weights_x, 2), taps_y, weights_y, 1)
    columns_first = resize_axis(resize_axis(src[None], taps_y, weights_y, 1), taps_x, weights_x, 2)
    assert not np.array_equal(rows_first, columns_first)
    want = np.asarray(Image.fromarray(src).resize(size_hw[::-1], Image.BILINEAR))
    got = resize_session(size_hw).run(None, {"image": src[None]})[0][0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, (columns_first if vertical else rows_first)[0])


def test_resize_batch_and_identity(photo):
    crop = np.ascontiguousarray(photo[:353, :481])
    session = resize_session((353, 481))
    batch = np.stack([crop, crop[::-1]])
    out = session.run(None, {"image": batch})[0]
    np.testing.assert_array_equal(out[0], crop)          # same size: PIL returns the image
    np.testing.assert_array_equal(out[1], crop[::-1])
