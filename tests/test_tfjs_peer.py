"""The numpy TF.js reference (``decode_multiple_poses_tfjs``, ``tie_order="heap"``)
against the real TF.js decoder: ``@tensorflow-models/posenet`` 2.2.2's
``decodeMultiplePoses`` in node (``onnxpose.testing.tfjs_peer``), on the real
uint8 backbone's heads for tie-heavy variants of test_couple.jpg and on
synthetic heads with hundreds of candidates and many equal scores.

Needs ``scripts/install_peers.sh`` (fails, does not skip, without it).
"""

from __future__ import annotations

import numpy as np
import pytest

from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.build_part_with_score_queue import build_part_with_score_queue
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs
from onnxpose.reference.sigmoid import logit
from onnxpose.reference.synthetic_heads import synthetic_heads
from onnxpose.testing.tfjs_peer import (INSTALL_HINT, decode_multiple_poses_tfjs_peer,
                                        tfjs_available)

STRIDE = 16
INPUT_WH = (481, 353)
KEYPOINT_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-5
# (mirror, brightness, crop box as fractions of the photo's width/height ..., or None)
VARIANTS = (
    [(False, b, None) for b in (0.6, 0.75, 0.9, 1.1, 1.25, 1.4)]
    + [(True, b, None) for b in (1.0, 0.7, 1.3)]
    + [(m, 1.0, (dx, dy)) for m in (False, True)
       for dx, dy in ((50, 0), (100, 70), (125, 0), (150, 0), (175, 70), (25, 70), (0, 70))]
    + [(False, 1.0, "crop0.05"), (False, 1.0, "crop0.10"), (True, 1.0, "crop0.08")]
)


@pytest.fixture(scope="module")
def peer():
    """The installed TF.js peer; a missing install is a failure, not a skip."""
    if not tfjs_available():
        pytest.fail("TF.js peer (peers/node_modules) is not installed or out of date: "
                    + INSTALL_HINT)
    return decode_multiple_poses_tfjs_peer


def variant_image(photo, mirror: bool, brightness: float, crop):
    """One variant of the photo, resized like ../shared/reference (PIL BILINEAR to 481x353)."""
    from PIL import Image, ImageEnhance, ImageOps
    image = ImageOps.mirror(photo) if mirror else photo
    w, h = image.size
    if isinstance(crop, str):  # centred crop, e.g. "crop0.05" cuts 5 % off every side
        f = float(crop[4:])
        image = image.crop((int(w * f), int(h * f), int(w * (1 - f)), int(h * (1 - f))))
    elif crop is not None:  # shift: drop dx columns left, dy rows top, (200 - dx) / 2 right
        dx, dy = crop
        image = image.crop((dx, dy, w - (200 - dx) // 2, h))
    if brightness != 1.0:
        image = ImageEnhance.Brightness(image).enhance(brightness)
    return np.asarray(image.resize(INPUT_WH, Image.BILINEAR))


@pytest.fixture(scope="module")
def variant_heads(built_single, test_image):
    """Float heads of the real uint8 backbone (built with onnxpose, run in onnxruntime)."""
    import onnxruntime as ort
    from PIL import Image, ImageOps
    photo = ImageOps.exif_transpose(Image.open(test_image)).convert("RGB")
    images = np.stack([variant_image(photo, *v) for v in VARIANTS])
    session = ort.InferenceSession(str(built_single), providers=["CPUExecutionProvider"])
    outputs = session.run(["heatmaps", "short_offsets", "displacements"],
                          {session.get_inputs()[0].name: images})
    return tuple(outputs)


def all_candidates_settings(heatmaps, **overrides) -> MultiPoseSettings:
    """The tfjs preset with no effective candidate cap (TF.js tries every candidate)."""
    _, h, w, k = heatmaps.shape
    return MultiPoseSettings.for_preset("tfjs", candidates=h * w * k, **overrides)


def differences(a, b) -> dict:
    """Per image: equal pose count, and max |keypoint| and |score| differences over those poses."""
    result = []
    for i in range(len(a[2])):
        n = int(a[2][i])
        result.append(dict(
            count_equal=bool(a[2][i] == b[2][i]),
            keypoint=float(np.abs(a[0][i, :n, :, :2] - b[0][i, :n, :, :2]).max(initial=0)),
            score=float(max(np.abs(a[0][i, :n, :, 2] - b[0][i, :n, :, 2]).max(initial=0),
                            np.abs(a[1][i, :n] - b[1][i, :n]).max(initial=0)))))
    return result


def agrees(d: dict) -> bool:
    return d["count_equal"] and d["keypoint"] <= KEYPOINT_TOLERANCE_PX \
        and d["score"] <= SCORE_TOLERANCE


def heap_and_scan_orders_differ(heatmaps, settings) -> bool:
    """Whether equal-score candidates make TF.js's heap order differ from scan order."""
    threshold = logit(settings.score_threshold)
    heap = build_part_with_score_queue(heatmaps, threshold, settings.local_maximum_radius,
                                       settings.candidates, "heap", queue="tfjs")
    scan = build_part_with_score_queue(heatmaps, threshold, settings.local_maximum_radius,
                                       settings.candidates, "scan", queue="tfjs")
    return heap != scan


def test_peer_uses_the_package_constants(peer, variant_heads):
    """The peer refuses settings the npm package cannot follow (2 refine steps, radius 1)."""
    settings = all_candidates_settings(variant_heads[0], refine_steps=5)
    with pytest.raises(ValueError, match="refines 2 times"):
        peer(*(h[:1] for h in variant_heads), STRIDE, settings)


def test_reference_heap_order_equals_tfjs_on_real_variants(peer, variant_heads, record_property):
    """Real heads, >= 20 variants: reference (heap) == TF.js (count, keypoints, scores),
    and scan order differs from TF.js on some of them (the test tells the orders apart)."""
    settings = all_candidates_settings(variant_heads[0])
    tfjs = peer(*variant_heads, STRIDE, settings)
    heap = differences(decode_multiple_poses_tfjs(*variant_heads, STRIDE, settings,
                                                  tie_order="heap"), tfjs)
    scan = differences(decode_multiple_poses_tfjs(*variant_heads, STRIDE, settings,
                                                  tie_order="scan"), tfjs)
    tied = [heap_and_scan_orders_differ(hm, settings) for hm in variant_heads[0]]
    summary = dict(variants=len(VARIANTS), tie_orders_differ=sum(tied),
                   scan_poses_differ=sum(not agrees(d) for d in scan),
                   max_keypoint_px=max(d["keypoint"] for d in heap),
                   max_score=max(d["score"] for d in heap))
    record_property("tfjs_peer_real", summary)
    print("TF.js peer, real variants:", summary)
    assert len(VARIANTS) >= 20
    bad = [(VARIANTS[i], d) for i, d in enumerate(heap) if not agrees(d)]
    assert not bad, f"reference (heap) differs from TF.js on {bad}"
    assert summary["scan_poses_differ"] >= 3, summary
    assert summary["tie_orders_differ"] >= len(VARIANTS) // 2, summary


def tie_heavy_synthetic_heads(seed: int, batch: int):
    """Synthetic people over a noisy background (logits ~ N(-3, 1.5)), logits rounded to
    steps of 0.5: plateaus of equal scores, hundreds of (tied) local maxima above 0.5."""
    heatmaps, short_offsets, displacements = synthetic_heads(seed, batch=batch, people=(4, 8))
    background = np.random.default_rng(seed).normal(-3.0, 1.5, heatmaps.shape)
    heatmaps = np.round(np.maximum(heatmaps, background) * 2) / 2
    return heatmaps.astype(np.float32), short_offsets, displacements


def test_reference_heap_order_equals_tfjs_on_many_tied_candidates(peer, record_property):
    """Synthetic heads with > 250 candidates and many equal scores, decoding up to 40 poses
    deep into the queue: reference (heap) == TF.js; scan order does not."""
    heads = tie_heavy_synthetic_heads(seed=7, batch=4)
    settings = all_candidates_settings(heads[0], max_poses=40)
    threshold = logit(settings.score_threshold)
    queues = [build_part_with_score_queue(hm, threshold, 1, settings.candidates, "scan")
              for hm in heads[0]]
    tfjs = peer(*heads, STRIDE, settings)
    heap = differences(decode_multiple_poses_tfjs(*heads, STRIDE, settings, tie_order="heap"),
                       tfjs)
    scan = differences(decode_multiple_poses_tfjs(*heads, STRIDE, settings, tie_order="scan"),
                       tfjs)
    tied = [len(c) - len({p.score for p in c}) for c in queues]
    summary = dict(candidates=[len(c) for c in queues], tied_candidates=tied,
                   poses=tfjs[2].tolist(),
                   scan_poses_differ=sum(not agrees(d) for d in scan),
                   max_keypoint_px=max(d["keypoint"] for d in heap),
                   max_score=max(d["score"] for d in heap))
    record_property("tfjs_peer_synthetic", summary)
    print("TF.js peer, synthetic:", summary)
    assert min(summary["candidates"]) > 250 and min(tied) > 100, summary
    assert all(agrees(d) for d in heap), (summary, heap)
    assert summary["scan_poses_differ"] >= 1, summary


# -- the ONNX graph against the real TF.js decoder -------------------------------------------

def graph_decode(settings: MultiPoseSettings, heads):
    """The decoder-only ONNX graph (onnxruntime CPU) on ``heads``."""
    import onnxruntime as ort
    from onnxpose.decoder.decoder_only import decoder_only_model
    model = decoder_only_model(heads[0].shape[1:3], STRIDE, settings)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(("heatmaps", "short_offsets", "displacements"), heads)))


def test_graph_heap_order_equals_tfjs_on_real_variants(peer, variant_heads):
    """The tfjs preset with TF.js's heap order and the default (every candidate) decodes the
    real variants as the real TF.js does; scan order does not on some of them."""
    settings = MultiPoseSettings.for_preset("tfjs", tie_order="heap")
    assert settings.candidates is None
    tfjs = peer(*variant_heads, STRIDE, settings)
    heap = differences(graph_decode(settings, variant_heads), tfjs)
    bad = [(VARIANTS[i], d) for i, d in enumerate(heap) if not agrees(d)]
    assert not bad, f"graph (heap) differs from TF.js on {bad}"
    scan = differences(graph_decode(MultiPoseSettings.for_preset("tfjs"), variant_heads), tfjs)
    assert sum(not agrees(d) for d in scan) >= 3


def test_graph_and_references_agree_with_tfjs_beyond_64_candidates(peer):
    """Hundreds of candidates (the old default cap was 64): TF.js, the numpy reference and
    the graph (heap order, no cap) agree; the coral graph agrees with the coral reference on
    the same heads (roots popped deep into Coral's queue)."""
    from onnxpose.reference.multi_pose import decode_multiple_poses
    heads = tie_heavy_synthetic_heads(seed=11, batch=2)
    settings = MultiPoseSettings.for_preset("tfjs", tie_order="heap", max_poses=40)
    queues = [build_part_with_score_queue(hm, logit(0.5), 1, None, "scan") for hm in heads[0]]
    assert min(len(q) for q in queues) > 250
    tfjs = peer(*heads, STRIDE, settings)
    reference = decode_multiple_poses_tfjs(*heads, STRIDE, settings, tie_order="heap")
    graph = graph_decode(settings, heads)
    assert all(agrees(d) for d in differences(reference, tfjs))
    assert all(agrees(d) for d in differences(graph, tfjs))
    assert min(tfjs[2]) > 20  # poses grown from candidates far past the 64th
    coral = MultiPoseSettings.for_preset("coral", tie_order="heap", max_poses=40)
    coral_reference = decode_multiple_poses(*heads, STRIDE, coral)
    assert all(agrees(d) for d in differences(graph_decode(coral, heads), coral_reference))
    capped = MultiPoseSettings.for_preset("tfjs", tie_order="heap", max_poses=40, candidates=64)
    assert not all(agrees(d) for d in differences(graph_decode(capped, heads), tfjs))
