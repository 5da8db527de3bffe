"""The heap tie order applied after the walk (``multi_pose.queue_order``): exact against the
numpy references, which pop every root from the preset's heap, and each of its rules needed."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxpose.decoder.multi_pose.queue_order as queue_order
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.reference.build_part_with_score_queue import build_part_with_score_queue
from onnxpose.reference.multi_pose import decode_multiple_poses
from onnxpose.reference.sigmoid import coral_logodds
from onnxpose.reference.synthetic_heads import random_heads, synthetic_heads
from onnxpose.spec import MultiPoseSettings

GRID, STRIDE = (23, 31), 16
HEAD_NAMES = ("heatmaps", "short_offsets", "displacements")
ASKED = "multi_pose/queue/asked"


def heads(kind: str, seed: int, step: float, batch: int = 1, people=(1, 6)):
    """Synthetic (people) or random heads, logits rounded to ``step`` (ties, as in 8-bit
    heads)."""
    made = list(synthetic_heads(seed, batch=batch, people=people) if kind == "people"
                else random_heads(seed, batch=batch))
    made[0] = (np.round(made[0] / step) * step).astype(np.float32)
    return made


def session(settings, asked_output=False):
    model = decoder_only_model(GRID, STRIDE, settings)
    if asked_output:
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            ASKED, onnx.TensorProto.INT64, None))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def matches_reference(sess, settings, head_set) -> bool:
    got = sess.run(None, dict(zip(HEAD_NAMES, head_set)))
    want = decode_multiple_poses(*head_set, STRIDE, settings)
    return (np.array_equal(got[2], want[2])
            and np.allclose(got[0][..., :2], want[0][..., :2], rtol=0, atol=1e-3)
            and np.allclose(got[0][..., 2], want[0][..., 2], rtol=0, atol=1e-5)
            and np.allclose(got[1], want[1], rtol=0, atol=1e-5))


def heap_settings(preset, max_poses, **kw):
    return MultiPoseSettings.for_preset(preset, tie_order="heap", max_poses=max_poses, **kw)


# Inputs on which dropping a rule changes the poses (found by a search over seeds; the
# random heads only for TF.js: Coral's bilinear rounding makes them differ from the
# reference anyway). (preset, max_poses, kind, seed, step, people)
CASES = {
    ("coral", "acceptance"): [(3, "people", 1, 0.5, (1, 6)), (3, "people", 8, 2.0, (1, 6)),
                              (10, "people", 0, 0.5, (2, 6))],
    ("coral", "order"): [(2, "people", 4, 0.5, (2, 6))],
    ("tfjs", "acceptance"): [(5, "people", 2, 2.0, (1, 6))],
    ("tfjs", "order"): [(5, "people", 3, 0.5, (1, 6)), (5, "random", 2, 0.5, (1, 6)),
                        (5, "random", 4, 1.0, (1, 6))],
}


@pytest.mark.parametrize("preset, rule", list(CASES))
def test_queue_order_matches_the_heap_reference(preset, rule):
    for max_poses, kind, seed, step, people in CASES[preset, rule]:
        settings = heap_settings(preset, max_poses)
        assert matches_reference(session(settings), settings,
                                 heads(kind, seed, step, people=people))


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("max_poses", [1, 3, 10])
def test_batches_mixing_replayed_and_unreplayed_images(preset, max_poses):
    """Images of one batch ask for different numbers of pops (0 among them)."""
    settings = heap_settings(preset, max_poses)
    sess = session(settings, asked_output=True)
    asked = []
    for seed in range(4):
        head_set = heads("people", seed, 0.5, batch=3)
        assert matches_reference(sess, settings, head_set)
        asked += sess.run([ASKED], dict(zip(HEAD_NAMES, head_set)))[0].tolist()
    assert 0 in asked and max(asked) > 0


def _never(gb, ctx, tied, *args):
    return gb.logical_and(tied, np.bool_(False), "never")


@pytest.mark.parametrize("preset, rule", list(CASES))
def test_each_rule_is_needed(monkeypatch, preset, rule):
    """Without the rule (it never asks) the graph leaves the heap's order on these inputs."""
    rule_function = {"acceptance": "acceptance_depends", "order": "order_shows"}[rule]
    caught = 0
    for max_poses, kind, seed, step, people in CASES[preset, rule]:
        settings = heap_settings(preset, max_poses)
        with monkeypatch.context() as patch:
            patch.setattr(queue_order, rule_function, _never)
            sess = session(settings)
        caught += not matches_reference(sess, settings, heads(kind, seed, step, people=people))
    assert caught >= 1


def test_the_photo_replays_no_pop_though_its_heap_order_differs(built_multi, reference,
                                                                coral_settings):
    """The built model's heads of the shared photo (8-bit, so many ties): Coral's heap pops
    their tied roots in another order than scan order, yet no tied pair can change the
    poses, so the graph asks for no pop in the heap's order and still decodes exactly like
    the reference. (Coral's own heads of the photo, ``coral_heads``, tie on saturated top
    logits whose order does matter: there the graph replays, see test_multi_pose_graph.)"""
    raw = ort.InferenceSession(str(built_multi), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in raw.get_outputs()],
                   raw.run(None, {raw.get_inputs()[0].name: reference["image"]})))
    photo = [out[name] for name in HEAD_NAMES]
    settings = heap_settings("coral", coral_settings.max_poses)
    threshold = coral_logodds(settings.score_threshold)
    orders = [build_part_with_score_queue(photo[0][0], threshold, 1, 10 ** 6, order)
              for order in ("heap", "scan")]
    assert orders[0] != orders[1]
    sess = session(settings, asked_output=True)
    assert matches_reference(sess, settings, photo)
    assert sess.run([ASKED], dict(zip(HEAD_NAMES, photo)))[0].tolist() == [0]


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_the_growth_benchmarks_worst_case_needs_the_whole_replay(preset):
    """``tied_candidate_heads`` (benchmarks/multi_pose_growth.py's heap worst case): every
    image asks for all its pops, and the graph still decodes like the heap reference (whose
    order differs from scan order there)."""
    from onnxpose.bench.multi_pose_bench import tied_candidate_heads
    settings = heap_settings(preset, 10 if preset == "coral" else 5)
    sess = session(settings, asked_output=True)
    for count in (10, 40):
        head_set = list(tied_candidate_heads(count, GRID, batch=2, seed=count))
        assert sess.run([ASKED], dict(zip(HEAD_NAMES, head_set)))[0].tolist() == [count] * 2
        assert matches_reference(sess, settings, head_set)
        threshold = (coral_logodds(settings.score_threshold) if preset == "coral" else 0.0)
        orders = [build_part_with_score_queue(head_set[0][0], threshold, 1, 10 ** 6, order)
                  for order in ("heap", "scan")]
        assert orders[0] != orders[1]
