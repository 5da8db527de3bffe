"""Issue 10 section 3: every flag does what it says, or is refused in one line before any
conversion (no TensorFlow import, no output file)."""

from __future__ import annotations

import json
import os
import sys

import onnx
import pytest

from onnxpose.cli import main
from onnxpose.errors import OnnxPoseError
from onnxpose.testing.toy_models import toy_posenet_onnx


def cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("onnxpose: error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


@pytest.fixture
def no_conversion(monkeypatch):
    """Fail the test if anything starts converting: refusals must come first."""
    import onnxpose.build as build

    def refuse(*args, **kwargs):
        raise AssertionError("conversion started before the refusal")
    monkeypatch.setattr(build, "convert_to_onnx", refuse)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.onnx"
    onnx.save(toy_posenet_onnx(), path)
    return path


@pytest.fixture(scope="module")
def coral_onnx(tmp_path_factory, decoder_tflite):
    """Coral's _decoder.tflite converted to .onnx by tf2onnx (the custom op kept as a node)."""
    import tf2onnx
    path = tmp_path_factory.mktemp("coral") / "decoder.onnx"
    model, _ = tf2onnx.convert.from_tflite(str(decoder_tflite), opset=17, output_path=str(path))
    assert any(n.op_type.endswith("PosenetDecoderOp") for n in model.graph.node)
    return path


# -- 1. -o / --out ------------------------------------------------------------------------

def _odd_outputs(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "target.onnx"
    target.write_bytes(b"keep")
    link = tmp_path / "link.onnx"
    link.symlink_to(target)
    return {"device": ("/dev/null", "not a regular file"), "fifo": (fifo, "not a regular file"),
            "stdout": ("/dev/stdout", "symbolic link"), "link": (link, "symbolic link"),
            "directory": (tmp_path, "is a directory")}


@pytest.mark.parametrize("kind", ["device", "fifo", "stdout", "link", "directory"])
def test_build_refuses_outputs_that_are_not_regular_files(tmp_path, capsys, toy, kind,
                                                          no_conversion):
    path, words = _odd_outputs(tmp_path)[kind]
    line = cli_error(capsys, ["build", str(toy), "-o", str(path)])
    assert str(path) in line and words in line
    assert (tmp_path / "target.onnx").read_bytes() == b"keep"
    assert os.path.islink(tmp_path / "link.onnx")


@pytest.mark.parametrize("kind", ["device", "fifo", "link"])
def test_predict_out_refuses_odd_paths(tmp_path, capsys, toy, kind):
    path, words = _odd_outputs(tmp_path)[kind]
    line = cli_error(capsys, ["predict", str(toy), "image.png", "--out", str(path)])
    assert words in line


def test_bench_and_golden_out(tmp_path, capsys, toy):
    file = tmp_path / "file"
    file.write_text("x")
    assert "is not a directory" in cli_error(capsys, ["golden", "--out", str(file)])
    assert "is not a directory" in cli_error(capsys, ["bench", str(toy), "--out", str(file)])
    link = tmp_path / "results"
    link.symlink_to(tmp_path)
    assert "symbolic link" in cli_error(capsys, ["bench", str(toy), "--out", str(link)])
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "bench.json").symlink_to(file)
    assert "symbolic link" in cli_error(capsys, ["bench", str(toy), "--out",
                                                 str(tmp_path / "real")])


def test_build_writes_new_paths_and_replaces_regular_files(tmp_path, capsys, toy):
    out = tmp_path / "out.onnx"
    out.write_bytes(b"old")
    assert main(["build", str(toy), "-o", str(out), "-q"]) == 0
    onnx.checker.check_model(onnx.load(out))


# -- 5. numeric ranges, strict JSON, floats as written --------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--score-threshold", "1"], "score_threshold must be in [0, 1)"),
    (["--score-threshold", "1.5"], "score_threshold must be in [0, 1)"),
    (["--score-threshold", "-5"], "score_threshold must be in [0, 1)"),
    (["--score-threshold", "nan"], "finite"),
    (["--score-threshold", "inf"], "finite"),
    (["--nms-radius", "nan"], "finite"),
    (["--nms-radius", "inf"], "finite"),
    (["--score-threshold", "0.9999999"], "too close to 1"),
])
def test_multi_numbers_refused_before_converting(tmp_path, capsys, toy, flags, words,
                                                 no_conversion):
    line = cli_error(capsys, ["build", str(toy), "-o", str(tmp_path / "o.onnx"),
                              "--decoder", "multi", *flags])
    assert words in line and str(toy) in line
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5"])
def test_min_score_range(tmp_path, capsys, toy, value):
    line = cli_error(capsys, ["predict", str(toy), "x.png", "--min-score", value])
    assert "--min-score must be a number in [0, 1]" in line


def test_score_threshold_zero_builds(tmp_path, toy):
    from onnxpose.build import build_model
    result = build_model(toy, None, decoder="multi", multi_overrides={"score_threshold": 0.0})
    assert result.decoder["settings"]["score_threshold"] == 0.0


def test_metadata_is_strict_json_with_floats_as_written(tmp_path, coral_onnx):
    from onnxpose.build import build_model
    result = build_model(coral_onnx, tmp_path / "coral.onnx")
    values = {p.key: p.value for p in result.model.metadata_props}
    for text in values.values():
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    decoder = values["onnxpose.decoder"]
    assert '"score_threshold": 0.2,' in decoder and "0.2000000" not in decoder
    assert '"score_threshold": 0.2,' in values["onnxpose.source"]


def test_write_metadata_refuses_nan():
    from onnxpose.metadata import write_metadata
    with pytest.raises(ValueError):
        write_metadata(onnx.ModelProto(), {"decoder": {"x": float("nan")}})


# -- 6. the other decoder's options ----------------------------------------------------------

@pytest.mark.parametrize("flags", [["--max-poses", "3"], ["--score-threshold", "0.3"],
                                   ["--nms-radius", "5"], ["--candidates", "8"],
                                   ["--refine-steps", "1"], ["--tie-order", "heap"],
                                   ["--preset", "tfjs"]])
@pytest.mark.parametrize("decoder", [[], ["--decoder", "single"]])
def test_multi_options_with_single_refused(tmp_path, capsys, quant_tflite, flags, decoder,
                                           no_conversion):
    line = cli_error(capsys, ["build", str(quant_tflite), "-o", str(tmp_path / "o.onnx"),
                              *decoder, *flags])
    assert flags[0] in line and "multi-pose options" in line
    if not decoder:
        assert "add --decoder multi" in line


def test_multi_options_without_decoder_on_coral_model_build(tmp_path, coral_onnx):
    assert main(["build", str(coral_onnx), "-o", str(tmp_path / "o.onnx"), "-q",
                 "--max-poses", "3"]) == 0
    meta = {p.key: p.value for p in onnx.load(tmp_path / "o.onnx").metadata_props}
    assert json.loads(meta["onnxpose.decoder"])["settings"]["max_poses"] == 3


@pytest.mark.parametrize("flags, words", [(["--coordinates", "grid"], "single-pose only"),
                                          (["--resize", "letterbox"], "needs --input image")])
def test_single_options_with_multi_refused(tmp_path, capsys, quant_tflite, flags, words,
                                           no_conversion):
    line = cli_error(capsys, ["build", str(quant_tflite), "-o", str(tmp_path / "o.onnx"),
                              "--decoder", "multi", *flags])
    assert words in line


def test_coral_model_defaults_to_multi_and_refuses_single_only_flags(tmp_path, capsys,
                                                                     decoder_tflite, no_conversion):
    line = cli_error(capsys, ["build", str(decoder_tflite), "-o", str(tmp_path / "o.onnx"),
                              "--coordinates", "grid"])
    assert "single-pose only" in line


def test_normalization_on_uint8_model_refused(tmp_path, capsys, quant_tflite, no_conversion):
    line = cli_error(capsys, ["build", str(quant_tflite), "-o", str(tmp_path / "o.onnx"),
                              "--normalization", "zero_to_one"])
    assert "uint8" in line and "--normalization" in line


def test_release_conflict_refused_before_converting(tmp_path, capsys, quant_tflite,
                                                   no_conversion):
    line = cli_error(capsys, ["build", str(quant_tflite), "-o", str(tmp_path / "o.onnx"),
                              "--decoder", "multi", "--preset", "tfjs",
                              "--coral-release", "frogfish"])
    assert "coral preset only" in line


def test_single_pose_ignores_displacement_heads_it_cannot_pin_down(tmp_path):
    from onnxpose.build import build_model
    path = tmp_path / "toy.onnx"
    onnx.save(toy_posenet_onnx(heads=[("heatmaps", 17, 16), ("offsets", 34, 16),
                                      ("mid_a", 64, 16), ("mid_b", 64, 16)]), path)
    assert build_model(path, None).heads.displacements == ()
    with pytest.raises(OnnxPoseError, match="several candidate displacement heads"):
        build_model(path, None, decoder="multi")


def test_single_pose_leaves_out_displacements_on_another_grid(tmp_path):
    from onnxpose.build import build_model
    path = tmp_path / "toy.onnx"
    onnx.save(toy_posenet_onnx(heads=[("heatmaps", 17, 16), ("offsets", 34, 16),
                                      ("displacements", 64, 32)]), path)
    assert build_model(path, None, keep_heads=True).heads.displacements == ()
    with pytest.raises(OnnxPoseError, match="inconsistent head shapes"):
        build_model(path, None, decoder="multi")


def test_input_size_on_fixed_size_model_is_reported(tmp_path, capsys, toy):
    assert main(["build", str(toy), "-o", str(tmp_path / "o.onnx"), "-q",
                 "--input-size", "33x49"]) == 0
    out = capsys.readouterr().out
    assert "backbone input changed from 65x65 to 33x49" in out
    meta = {p.key: json.loads(p.value) for p in onnx.load(tmp_path / "o.onnx").metadata_props}
    assert (meta["onnxpose.input"]["height"], meta["onnxpose.input"]["width"]) == (33, 49)


# -- 7. --refine-steps bounded -----------------------------------------------------------------

def test_refine_steps_bounded(tmp_path, capsys, toy, no_conversion):
    from onnxpose.spec import MAX_REFINE_STEPS, MultiPoseSettings
    line = cli_error(capsys, ["build", str(toy), "-o", str(tmp_path / "o.onnx"), "--decoder",
                              "multi", "--refine-steps", str(MAX_REFINE_STEPS + 1)])
    assert "--refine-steps" in line
    with pytest.raises(ValueError, match="refine_steps"):
        MultiPoseSettings(refine_steps=1000)
    MultiPoseSettings(refine_steps=MAX_REFINE_STEPS)


# -- 8. predict ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_built(tmp_path_factory, toy):
    out = tmp_path_factory.mktemp("toy_built") / "toy_built.onnx"
    assert main(["build", str(toy), "-o", str(out), "-q"]) == 0
    return out


def test_predict_json_honours_min_score(capsys, toy_built, test_image):
    assert main(["predict", str(toy_built), str(test_image), "--json", "--min-score", "0"]) == 0
    everything = json.loads(capsys.readouterr().out)
    scores = sorted(k["score"] for k in everything["poses"][0]["keypoints"])
    assert len(scores) == 17
    cut = scores[8]
    assert main(["predict", str(toy_built), str(test_image), "--json",
                 "--min-score", repr(cut)]) == 0
    payload = json.loads(capsys.readouterr().out)
    kept = payload["poses"][0]["keypoints"]
    assert payload["min_score"] == cut
    assert len(kept) == sum(s >= cut for s in scores) and all(k["score"] >= cut for k in kept)
    assert list(kept[0]) == ["name", "y", "x", "score"]


def test_predict_text_prints_y_then_x(capsys, toy_built, test_image):
    assert main(["predict", str(toy_built), str(test_image), "--min-score", "0"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "score" in l and "y" in l][-1]
    assert line.split()[1] == "y" and line.split()[3] == "x"


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8"),
                                           (".bmp", b"BM"), (".webp", b"RIFF"),
                                           (".tif", b"II*\x00")])
def test_predict_out_format_follows_extension(tmp_path, capsys, toy_built, test_image, suffix,
                                              magic):
    out = tmp_path / f"overlay{suffix}"
    assert main(["predict", str(toy_built), str(test_image), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_predict_unknown_extension_refused_before_running(tmp_path, capsys, toy_built):
    line = cli_error(capsys, ["predict", str(toy_built), "missing.jpg", "--out",
                              str(tmp_path / "o.gif2")])
    assert "unknown image extension" in line


class _ClosedPipe:
    """A stdout whose reader has gone (``| head`` after its first line)."""

    encoding = "utf-8"

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        raise OSError("no file descriptor")


def test_predict_into_a_closed_pipe_keeps_the_overlay(tmp_path, capsys, monkeypatch, toy_built,
                                                      test_image):
    out = tmp_path / "o.png"
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["predict", str(toy_built), str(test_image), "--min-score", "0", "--out", str(out)])
    monkeypatch.undo()
    assert code == 141
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "Traceback" not in capsys.readouterr().err


# -- 9. the rest ---------------------------------------------------------------------------

def test_huge_image_gets_onnxpose_limit(tmp_path, capsys, toy_built):
    from PIL import Image
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(path)
    line = cli_error(capsys, ["predict", str(toy_built), str(path)])
    assert "limit of 100000000" in line and "200000000" not in line


def test_inspect_input_size_and_json_data(tmp_path, capsys):
    path = tmp_path / "dynamic.onnx"
    onnx.save(toy_posenet_onnx(dynamic_input=True), path)
    assert main(["inspect", str(path)]) == 0
    assert "--input-size" in capsys.readouterr().out
    assert main(["inspect", str(path), "--input-size", "65x65", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"] == [{"name": "image", "shape": [1, 65, 65, 3], "dtype": "float32"}]
    assert report["output_stride"] == 16 and report["heads"]["grid"] == [5, 5]
    assert main(["inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"][0]["shape"] == [1, None, None, 3]


def test_bench_batch_with_empty_entry_refused(capsys, toy):
    assert "--batch '1,,2'" in cli_error(capsys, ["bench", str(toy), "--batch", "1,,2"])


def test_displacements_names_are_stripped(tmp_path, capsys):
    path = tmp_path / "halves.onnx"
    onnx.save(toy_posenet_onnx(heads=[("heatmaps", 17, 16), ("offsets", 34, 16),
                                      ("a", 32, 16), ("b", 32, 16)]), path)
    assert main(["build", str(path), "-o", str(tmp_path / "o.onnx"), "-q", "--decoder", "multi",
                 "--displacements", "b, a"]) == 0
    assert '"displacements"' not in capsys.readouterr().err


def test_providers_named_twice_are_used_once(capsys, toy_built, test_image):
    from onnxpose.runtime.providers import resolve_providers
    assert resolve_providers("cpu,cpu") == ["CPUExecutionProvider"]
    assert main(["predict", str(toy_built), str(test_image), "--providers", "cpu,cpu"]) == 0
    assert capsys.readouterr().err.strip() == ""


def test_unknown_decoder_is_onnxpose_error(toy):
    from onnxpose.build import build_model
    with pytest.raises(OnnxPoseError, match="unknown decoder 'mult'"):
        build_model(toy, None, decoder="mult")


def test_coral_decoder_onnx_is_accepted_like_the_tflite(tmp_path, capsys, coral_onnx):
    from onnxpose.build import build_model
    result = build_model(coral_onnx, tmp_path / "o.onnx")
    assert result.decoder["type"] == "multi" and result.coral_decoder_op["stride"] == 16
    assert main(["inspect", str(coral_onnx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["coral_decoder_op"]["max_detections"] == 10


def test_usage_errors_are_one_line(capsys, toy):
    line = cli_error(capsys, ["build", str(toy), "-o", "x.onnx", "--decoder", "mult"])
    assert "--decoder" in line
