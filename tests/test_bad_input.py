"""Bad input: one line naming the file and the problem, non-zero exit, no output file."""

from __future__ import annotations

import onnx
import pytest

from onnxpose.cli import main
from onnxpose.testing.toy_models import keras_classifier_savedmodel, toy_posenet_onnx


def cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("onnxpose: error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err  # one line, the last
    return errors[0]


@pytest.fixture(scope="module")
def keras_classifier(tmp_path_factory):
    directory = tmp_path_factory.mktemp("classifier") / "saved_model"
    keras_classifier_savedmodel(directory)
    return directory


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "out.onnx"
    line = cli_error(capsys, ["build", str(tmp_path / "nope.tflite"), "-o", str(out)])
    assert "nope.tflite" in line and "no such file" in line
    assert not out.exists()


@pytest.mark.parametrize("name, data", [("junk.tflite", b"\x00\x01not a flatbuffer" * 10),
                                        ("junk.onnx", b"\x08garbage protobuf \xff\xff"),
                                        ("notes.txt", b"hello"),
                                        ("empty.tflite", b"")])
def test_not_a_model(tmp_path, capsys, name, data):
    (tmp_path / name).write_bytes(data)
    out = tmp_path / "out.onnx"
    line = cli_error(capsys, ["build", str(tmp_path / name), "-o", str(out)])
    assert name in line
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / name]


def test_model_without_heatmap_head(tmp_path, capsys, keras_classifier):
    out = tmp_path / "out.onnx"
    line = cli_error(capsys, ["build", str(keras_classifier), "-o", str(out)])
    assert str(keras_classifier) in line and "17 heatmap channels" in line
    assert not out.exists()


def test_inconsistent_head_shapes(tmp_path, capsys):
    model = toy_posenet_onnx(heads=[("heatmaps", 17, 16), ("offsets", 34, 32)])
    onnx.save(model, tmp_path / "toy.onnx")
    line = cli_error(capsys, ["build", str(tmp_path / "toy.onnx"), "-o", str(tmp_path / "o.onnx")])
    assert "toy.onnx" in line and "inconsistent head shapes" in line
    assert not (tmp_path / "o.onnx").exists()


def test_output_in_missing_directory(tmp_path, capsys, quant_tflite):
    out = tmp_path / "missing" / "out.onnx"
    line = cli_error(capsys, ["build", str(quant_tflite), "-o", str(out)])
    assert str(out) in line and "does not exist" in line
    assert not out.parent.exists()


def test_failed_build_leaves_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "out.onnx"
    out.write_bytes(b"previous")
    (tmp_path / "junk.tflite").write_bytes(b"1234TFL3 truncated")
    cli_error(capsys, ["build", str(tmp_path / "junk.tflite"), "-o", str(out)])
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.tflite", "out.onnx"]


def test_image_that_is_not_an_image(tmp_path, capsys, built_single):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"this is not a jpeg")
    overlay = tmp_path / "overlay.png"
    line = cli_error(capsys, ["predict", str(built_single), str(bad), "--out", str(overlay)])
    assert "photo.jpg" in line and "not an image" in line
    assert not overlay.exists()


def test_missing_provider_is_refused_not_replaced(capsys, built_single, test_image):
    from onnxpose.runtime.providers import provider_loads
    if provider_loads("CUDAExecutionProvider"):
        pytest.skip("CUDA loads on this machine")
    line = cli_error(capsys, ["predict", str(built_single), str(test_image), "--providers", "cuda"])
    assert "CUDAExecutionProvider is not usable" in line
