"""predict over many inputs (local engine and Ray Data) and the Triton export, on a folder of
200 variants of the real test photo, a short video made from it, a corrupt image and a
truncated video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxpose.cli import main
from onnxpose.keypoints import KEYPOINT_NAMES

av = pytest.importorskip("av")


@pytest.fixture(scope="session")
def inputs(tmp_path_factory, test_image):
    from onnxpose.testing.scale_inputs import (make_corrupt_image, make_image_folder,
                                               make_truncated_video, make_video)
    root = tmp_path_factory.mktemp("scale")
    make_image_folder(test_image, root / "images", 200)
    make_corrupt_image(root / "images" / "corrupt.jpg")
    video = make_video(test_image, root / "clip.mp4", frames=24, rate=12)
    make_truncated_video(video, root / "truncated.mp4")
    return root


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_record(record):
    assert set(record) == {"source", "frame", "timestamp", "image_size", "poses"}
    assert record["image_size"] == {"height": 120, "width": 160}
    for pose in record["poses"]:
        assert [k["name"] for k in pose["keypoints"]] == list(KEYPOINT_NAMES)
        assert 0 <= pose["score"] <= 1


def test_local_engine_folder_and_video(tmp_path, capsys, built_single, inputs):
    jsonl, out = tmp_path / "poses.jsonl", tmp_path / "overlays"
    code = main(["predict", str(built_single), str(inputs / "images"), str(inputs / "clip.mp4"),
                 str(inputs / "truncated.mp4"), "--jsonl", str(jsonl), "--out", str(out),
                 "--batch", "8", "-q", "--providers", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    records = _records(jsonl)
    assert len(records) == 200 + 24
    for record in records:
        _check_record(record)
    images = [r for r in records if r["frame"] is None]
    frames = [r for r in records if r["frame"] is not None]
    assert [r["frame"] for r in frames] == list(range(24))
    assert frames[12]["timestamp"] == pytest.approx(1.0)
    assert "200 record" not in err and "224 record(s), 2 fault(s)" in err
    assert err.count("onnxpose: warning:") == 2 and "corrupt.jpg" in err and "truncated.mp4" in err
    assert len({r["source"] for r in images}) == 200
    from PIL import Image
    overlays = sorted(p for p in out.rglob("*") if p.suffix in (".jpg", ".png"))
    assert len(overlays) == 200
    with Image.open(overlays[0]) as first:
        assert first.size == (160, 120)
    with av.open(str(out / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (160, 120, 12)
        assert sum(1 for _ in container.decode(stream)) == 24
    assert not (out / "truncated.mp4").exists()


def test_every_resume_and_torn_line(tmp_path, capsys, built_single, inputs):
    jsonl = tmp_path / "poses.jsonl"
    args = ["predict", str(built_single), str(inputs / "clip.mp4"), "--every", "3",
            "--jsonl", str(jsonl), "-q"]
    assert main(args) == 0
    records = _records(jsonl)
    assert [r["frame"] for r in records] == [0, 3, 6, 9, 12, 15, 18, 21]
    kept = jsonl.read_text().splitlines(keepends=True)
    jsonl.write_text("".join(kept[:3]) + kept[3][:40])        # a run killed mid-record
    assert main(args) == 2                                    # no --resume: refused
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "3 already in the JSONL" in capsys.readouterr().err
    resumed = _records(jsonl)
    assert resumed[:3] == records[:3]
    _same(resumed, records)   # the rest ran in other batches: equal to float rounding


def test_options_checked_before_running(tmp_path, capsys, built_single, inputs):
    assert main(["predict", str(built_single), str(inputs / "images"), "--json"]) == 2
    assert main(["predict", str(built_single), str(tmp_path / "nothing*.jpg"), "-q"]) == 2
    assert main(["predict", str(built_single), str(inputs / "clip.mp4"), "--num-actors", "2"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("onnxpose: error: ") for line in lines)


def _same(a, b):
    assert [(r["source"], r["frame"], r["timestamp"], r["image_size"]) for r in a] == \
        [(r["source"], r["frame"], r["timestamp"], r["image_size"]) for r in b]
    for x, y in zip(a, b):
        assert len(x["poses"]) == len(y["poses"])
        for p, q in zip(x["poses"], y["poses"]):
            assert p["score"] == pytest.approx(q["score"], abs=1e-5)
            for k, l in zip(p["keypoints"], q["keypoints"]):
                assert k["name"] == l["name"]
                np.testing.assert_allclose([k["y"], k["x"], k["score"]],
                                           [l["y"], l["x"], l["score"]], atol=1e-4)


def test_ray_engine_equals_local(tmp_path, capsys, built_single, inputs):
    ray = pytest.importorskip("ray")
    from onnxpose.testing.scale_inputs import make_image_folder
    folder = tmp_path / "few"
    make_image_folder(inputs / "images" / "img_0000.png", folder, 16)  # a short Ray run
    sources = [str(folder), str(inputs / "images" / "corrupt.jpg"), str(inputs / "clip.mp4")]
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["predict", str(built_single), *sources, "--jsonl", str(local), "-q",
                 "--providers", "cpu"]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert main(["predict", str(built_single), *sources, "--jsonl", str(remote), "-q",
                     "--engine", "ray", "--num-actors", "1", "--providers", "cpu"]) == 0
    finally:
        ray.shutdown()
    assert "1 fault(s)" in capsys.readouterr().err
    a, b = _records(local), _records(remote)
    assert len(a) == 16 + 24
    _same(a, b)


def test_triton_config_matches_the_model(tmp_path, capsys, built_single):
    model_config = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    import onnxruntime as ort
    from google.protobuf import text_format
    assert main(["export", "triton", str(built_single), str(tmp_path / "repo"), "--max-batch", "16",
                 "--instances", "2", "--tensorrt"]) == 0
    entry = tmp_path / "repo" / built_single.stem
    assert (entry / "1" / "model.onnx").read_bytes() == built_single.read_bytes()
    config = text_format.Parse((entry / "config.pbtxt").read_text(), model_config.ModelConfig())
    assert config.backend == "onnxruntime" and config.max_batch_size == 16
    assert config.name == built_single.stem
    assert config.HasField("dynamic_batching")
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, model_config.ModelInstanceGroup.KIND_GPU)]
    accel = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accel.name == "tensorrt" and accel.parameters["precision_mode"] == "FP16"
    assert accel.parameters["trt_engine_cache_enable"] == "1"
    session = ort.InferenceSession(str(built_single), providers=["CPUExecutionProvider"])
    types = {"tensor(uint8)": "TYPE_UINT8", "tensor(float)": "TYPE_FP32", "tensor(int32)": "TYPE_INT32"}

    def expected(values):
        return [(v.name, types[v.type], list(v.shape[1:]) or [1]) for v in values]

    def written(tensors):
        return [(t.name, model_config.DataType.Name(t.data_type), list(t.dims)) for t in tensors]

    assert written(config.input) == expected(session.get_inputs())
    assert written(config.output) == expected(session.get_outputs())
    assert main(["export", "triton", str(built_single), str(tmp_path / "repo")]) == 2
    assert "already exists" in capsys.readouterr().err
