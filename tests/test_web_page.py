"""The web page (web/, served by ``onnxpose serve-web``'s server) in real headless Chromium.

Debian's ``chromium`` (scripts/install_browser.sh) is driven by Playwright's Python API with that
executable (no downloaded browser). The photo is picked through the page's file input
(``set_input_files``); the page exposes its result as ``window.onnxposeResult``.

Exactness: the page stretches the photo to the model's input size with the canvas, which is
not PIL's bilinear resize that PoseSession uses; so the exact check feeds the page the photo
already resized by PoseSession (a PNG of the model's input size: the canvas copies it
unchanged, which the input checksum proves) and compares the keypoints with onnxruntime CPU's
on the same tensor. The full photo, resized by the browser, must give as many people.
WebGPU (SwiftShader, no GPU here; the page's WebGPU is onnxruntime-web's native WebGPU EP, from
``ort.webgpu.min.js``) must load and run the multi-pose model within 60 s and find as many
people as onnxruntime CPU (its float arithmetic of the int8 backbone differs from onnxruntime
CPU's, so keypoints are not compared; about 35 s here).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from onnxpose.bench.runtime_worker import CHROMIUM, CHROMIUM_FLAGS

REPO = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (scripts/install_browser.sh)")
    if not (REPO / "peers/node_modules/onnxruntime-web/dist/ort.all.min.js").exists():
        pytest.skip("onnxruntime-web is not installed (bash scripts/install_peers.sh)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _page_result(browser, model, image, ep="wasm"):
    from onnxpose.web_server import serve_in_thread
    server, url = serve_in_thread(model)
    try:
        page = browser.new_page()
        page.goto(f"{url}?ep={ep}")
        page.wait_for_function("window.onnxposeResult && window.onnxposeResult.status !== 'loading'",
                               timeout=WAIT_MS)
        ready = page.evaluate("window.onnxposeResult")
        assert ready["status"] == "ready", ready
        page.set_input_files("#file", str(image))
        page.wait_for_function("['done', 'error'].includes(window.onnxposeResult.status)",
                               timeout=WAIT_MS)
        result = page.evaluate("window.onnxposeResult")
        page.close()
        return result
    finally:
        server.shutdown()


def _model_size_png(model, test_image, tmp_path):
    from PIL import Image
    from onnxpose import PoseSession
    session = PoseSession(model, providers=["cpu"])
    tensor, _ = session.preprocess([test_image])
    png = tmp_path / "model_size.png"
    Image.fromarray(tensor[0]).save(png)
    return session, tensor, png


def _checksum(tensor) -> float:
    """The page's input checksum: sum of value * (i % 7 + 1), mod 1e9 (integers: exact)."""
    flat = tensor.reshape(-1).astype(np.int64)
    return float(np.sum(flat * ((np.arange(flat.size) % 7) + 1)) % 1_000_000_000)


def _expected(session, tensor):
    out = session.run(tensor)
    if session.multi_pose:
        count = int(out["pose_count"][0])
        return out["keypoints"][0, :count], out["pose_scores"][0, :count]
    return out["keypoints"][:1], out["pose_score"][:1]


@pytest.mark.parametrize("which", ["single", "multi"])
def test_page_keypoints_equal_onnxruntime_cpu_on_the_resized_photo(which, browser, built_single,
                                                                   built_multi, test_image, tmp_path):
    model = built_single if which == "single" else built_multi
    session, tensor, png = _model_size_png(model, test_image, tmp_path)
    result = _page_result(browser, model, png)
    assert result["status"] == "done", result
    assert result["inputChecksum"] == pytest.approx(_checksum(tensor), abs=1e-6), \
        "the page's input tensor differs from PoseSession's"
    keypoints, scores = _expected(session, tensor)
    got = np.asarray(result["keypoints"], dtype=np.float64)
    assert got.shape == keypoints.shape
    np.testing.assert_allclose(got[..., :2], keypoints[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(got[..., 2], keypoints[..., 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(result["poseScores"], scores, atol=1e-5, rtol=0)


def test_page_finds_the_same_people_in_the_full_photo(browser, built_multi, test_image):
    from onnxpose import PoseSession
    expected = PoseSession(built_multi, providers=["cpu"]).predict(test_image)
    result = _page_result(browser, built_multi, test_image)
    assert result["status"] == "done", result
    assert len(result["keypoints"]) == len(expected.poses) == 2
    assert result["imageSize"] == list(expected.image_size)


def test_page_runs_the_multi_pose_model_on_webgpu(browser, built_multi, test_image, tmp_path):
    session, tensor, png = _model_size_png(built_multi, test_image, tmp_path)
    result = _page_result(browser, built_multi, png, ep="webgpu")
    assert result["status"] == "done", f"WebGPU: {result.get('message')}"
    assert len(result["keypoints"]) == int(session.run(tensor)["pose_count"][0])
