"""The flag matrix (issue 10): every combination of decoder x preset x layout x coordinates x
keep-heads x tie-order x Coral release, at every opset ``--opset`` accepts, from every
source form (uint8 TFLite, float SavedModel, plain ONNX; tiny generated models; the TF sources
at the lowest and highest opset, the ONNX source at every opset) either builds
a model that validates against the numpy reference, or is refused in one line before any
conversion. For the plain ONNX source at the lowest opset the matrix also crosses the graph
form (``--control-flow none``, with ``--candidates 8``) and the input mode (``--input image``),
each with every combination, and the two together with the decoder, preset, layout and
coordinates.

Which combinations are refused is written down here on its own (``refusal``), from what each
flag means, so that a flag silently ignored, or refused where it should work, fails too.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import onnx
import pytest

from onnxpose import cli
from onnxpose.spec import MAX_OPSET, OPSET

SOURCES = ("tflite_uint8", "savedmodel", "onnx")
OPSETS = tuple(range(OPSET, MAX_OPSET + 1))
#: flag -> its values (None: not given)
DIMENSIONS = {
    "--decoder": ("single", "multi"),
    "--preset": (None, "tfjs"),
    "--layout": (None, "movenet"),
    "--coordinates": (None, "grid"),
    "--keep-heads": (False, True),
    "--tie-order": (None, "heap"),
    "--coral-release": (None, "frogfish"),
}
#: crossed with the rest for one source at one opset only (the suite's time); both are
#: orthogonal to the source form and opset (the backbone is untouched by them)
EDGE_CELL = ("onnx", OPSET)
EDGE_DIMENSIONS = {"--control-flow": (None, "none"), "--input": (None, "image")}


def combinations(dimensions: dict) -> list[dict]:
    return [dict(zip(dimensions, values)) for values in itertools.product(*dimensions.values())]


COMBOS = combinations(DIMENSIONS)
#: each edge value crossed with every combination; both edges together (orthogonal: one
#: changes the decoder's graph form, the other the input side) crossed with the decoder,
#: preset, layout and coordinates only (the suite's time)
EDGE_COMBOS = [{**c, **e} for e in combinations(EDGE_DIMENSIONS) for c in COMBOS
               if not all(e.values()) or not (c["--keep-heads"] or c["--tie-order"]
                                              or c["--coral-release"])]
MULTI_ONLY = ("--preset", "--tie-order", "--coral-release", "--control-flow")


def refusal(combo: dict) -> str | None:
    """Why the combination must be refused (None: it must build)."""
    if combo["--decoder"] == "single":
        given = [flag for flag in MULTI_ONLY if combo.get(flag)]
        return f"multi-pose options {given} with the single-pose decoder" if given else None
    if combo["--coordinates"]:
        return "--coordinates is single-pose only"
    if combo["--preset"] == "tfjs" and combo["--coral-release"]:
        return "a Coral release with the tfjs preset"
    if combo.get("--control-flow") and combo["--tie-order"]:
        return "the heap replays are Loops: no heap tie order without control flow"
    return None


def arguments(combo: dict) -> list[str]:
    args = ["--candidates", "8"] if combo.get("--control-flow") else []
    for flag, value in combo.items():
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, value]
    return args


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    from onnxpose.testing.toy_models import toy_posenet_onnx, toy_posenet_savedmodel
    from onnxpose.testing.toy_tflite import toy_posenet_tflite_uint8
    folder = tmp_path_factory.mktemp("matrix_sources")
    onnx.save(toy_posenet_onnx(input_hw=(65, 65)), folder / "toy.onnx")
    toy_posenet_savedmodel(folder / "toy_savedmodel", input_hw=(33, 33))
    return {"tflite_uint8": toy_posenet_tflite_uint8(folder / "toy_uint8.tflite"),
            "savedmodel": folder / "toy_savedmodel", "onnx": folder / "toy.onnx"}


@pytest.fixture(scope="module")
def conversions():
    """Real conversions, made once per (source, opset) and counted: a refused combination
    must not convert."""
    from onnxpose.convert import convert_to_onnx
    cache, calls = {}, []

    def convert(path, opset):
        calls.append((str(path), opset))
        key = (str(path), opset)
        if key not in cache:
            cache[key] = convert_to_onnx(path, opset)
        model, fmt = cache[key]
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy, fmt

    return convert, calls


def run_build(capsys, args) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["build", *args, "-q"])
    return code, capsys.readouterr().err


#: (source, opset) cells: the plain ONNX source at every opset; the TF sources (converted
#: at the lowest opset, then upgraded by the same code as an ONNX source) at both ends of the
#: range (the suite's time)
CELLS = [(source, opset) for source in SOURCES for opset in OPSETS
         if source == "onnx" or opset in (OPSET, MAX_OPSET)]


@pytest.mark.parametrize("source, opset", CELLS, ids=[f"{s}-{o}" for s, o in CELLS])
def test_every_combination_builds_or_is_refused_before_converting(
        source, opset, sources, conversions, monkeypatch, capsys, tmp_path, record_property):
    from onnxpose.metadata import parse_metadata
    from onnxpose.validate import validate_model
    convert, calls = conversions
    monkeypatch.setattr("onnxpose.build.convert_to_onnx", convert)
    combos = EDGE_COMBOS if (source, opset) == EDGE_CELL else COMBOS
    started, built, refused, problems = time.perf_counter(), 0, 0, []
    for i, combo in enumerate(combos):
        out = tmp_path / f"m{i}.onnx"
        before = len(calls)
        code, err = run_build(capsys, [str(sources[source]), "-o", str(out),
                                       "--opset", str(opset), *arguments(combo)])
        why = refusal(combo)
        if why is not None:
            refused += 1
            lines = err.strip().splitlines()
            if code != 2 or len(lines) != 1 or not lines[0].startswith("onnxpose: error:") \
                    or len(calls) != before or out.exists():
                problems.append((combo, why, code, err.strip()[:200], len(calls) - before))
            continue
        built += 1
        if code != 0 or not out.exists():
            problems.append((combo, "must build", code, err.strip()[:200]))
            continue
        model = onnx.load(str(out))
        info = parse_metadata({p.key: p.value for p in model.metadata_props})
        outputs = [o.name for o in model.graph.output]
        expected = list(info.output_names)
        (graph_input,) = model.graph.input
        dims = graph_input.type.tensor_type.shape.dim
        image_input = ((info.io or {}).get("input") == "image"
                       and graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
                       and all(d.dim_param for d in dims[:3]) and dims[3].dim_value == 3)
        if combo["--keep-heads"]:
            expected += ["heatmaps", "short_offsets", "displacements"]  # every toy has all three
        settings = info.settings()
        layout = (info.io or {}).get("layout", getattr(settings, "layout", None))
        asked = {"--layout": layout == "movenet",
                 "--coordinates": getattr(settings, "coordinates", None) == "grid",
                 "--preset": getattr(settings, "preset", None) == "tfjs",
                 "--tie-order": getattr(settings, "tie_order", None) == "heap",
                 "--coral-release": getattr(settings, "coral_release", None) == "frogfish",
                 "--control-flow": getattr(settings, "control_flow", None) == "none",
                 "--input": image_input}
        honest = all(asked[flag] == bool(combo.get(flag)) for flag in asked)
        opset_ok = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == opset
        if sorted(outputs) != sorted(expected) or not honest or not opset_ok \
                or info.multi_pose != (combo["--decoder"] == "multi"):
            problems.append((combo, "built model does not say what was asked", outputs))
            continue
        validate_model(model, out, seed=1)   # another random batch than the build's check
    seconds = time.perf_counter() - started
    record_property("flag_matrix", dict(source=source, opset=opset, combinations=len(combos),
                                        built=built, refused=refused, seconds=round(seconds, 1)))
    assert not problems, problems[:5]
    valid = sum(refusal(c) is None for c in combos)
    assert built == valid and refused == len(combos) - valid
