"""The real TF.js multi-pose decoder as a test peer.

Runs ``@tensorflow-models/posenet`` 2.2.2's own ``decodeMultiplePoses``
(tfjs-core 3.21.0, cpu backend) in node, installed from ``peers/package-lock.json``
by ``scripts/install_peers.sh`` into ``peers/node_modules``.

Head layout (read from the package's ``multi_pose/decode_pose.js`` and ``util.js``):

* scores ``[h, w, 17]``: ``tf.sigmoid`` of our heatmap logits, computed in node
  (TF.js's PoseNet model applies ``sigmoid`` to its heatmap head; the cpu kernel
  is ``1 / (1 + Math.exp(-x))`` in double, stored as float32);
* offsets ``[h, w, 34]``: ours unchanged (``getOffsetPoint``: y = channel k,
  x = channel 17 + k);
* ``displacementsFwd [h, w, 32]`` = our displacements ``[..., 0:32]`` and
  ``displacementsBwd`` = ``[..., 32:64]``: ``getDisplacement`` reads y from
  channel ``e`` and x from ``16 + e`` (``numEdges = shape[2] / 2``), which is our
  fwd y(16), fwd x(16) | bwd y(16), bwd x(16); both walks index by the same edge
  id ``e`` of ``poseChain``, the backward one from last edge to first.

The package fixes what our settings leave open: ``kLocalMaximumRadius = 1``,
``offsetRefineStep = 2`` (the ``decodePose`` default; the package passes none),
no candidate cap and no pose-score threshold. Its arithmetic is in double.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from onnxpose.spec import MultiPoseSettings
from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS
from onnxpose.reference.pack_poses import pack_poses, stack_batch

PEERS = Path(__file__).resolve().parents[2] / "peers"
SCRIPT = PEERS / "tfjs_decode_multiple_poses.js"
PACKAGE = PEERS / "node_modules" / "@tensorflow-models" / "posenet" / "package.json"
LOCK = PEERS / "package-lock.json"
STAMP = PEERS / "node_modules" / ".onnxpose-lock.sha256"  # written by scripts/install_peers.sh
INSTALL_HINT = "run scripts/install_peers.sh (npm ci of peers/package-lock.json)"
PACKAGE_REFINE_STEPS = 2
PACKAGE_LOCAL_MAXIMUM_RADIUS = 1


def tfjs_available() -> bool:
    """Whether node is there and node_modules was installed from the current lock file."""
    if shutil.which("node") is None or not PACKAGE.exists() or not STAMP.exists():
        return False
    return STAMP.read_text().strip() == hashlib.sha256(LOCK.read_bytes()).hexdigest()


def _check_settings(settings: MultiPoseSettings) -> None:
    if settings.refine_steps != PACKAGE_REFINE_STEPS:
        raise ValueError(f"TF.js's decodePose refines {PACKAGE_REFINE_STEPS} times, "
                         f"not {settings.refine_steps}")
    if settings.local_maximum_radius != PACKAGE_LOCAL_MAXIMUM_RADIUS:
        raise ValueError(f"TF.js's local maximum radius is {PACKAGE_LOCAL_MAXIMUM_RADIUS}, "
                         f"not {settings.local_maximum_radius}")


def _write_heads(path: Path, heatmaps, short_offsets, displacements) -> None:
    """Per image: logits, offsets, displacementsFwd, displacementsBwd (float32, C order)."""
    split = 2 * NUM_EDGES
    with open(path, "wb") as f:
        for hm, so, dp in zip(heatmaps, short_offsets, displacements):
            for part in (hm, so, dp[..., :split], dp[..., split:]):
                f.write(np.ascontiguousarray(part, dtype="<f4").tobytes())


def _run_node(heatmaps, short_offsets, displacements, output_stride: int,
              settings: MultiPoseSettings) -> list:
    n, h, w, _ = heatmaps.shape
    with tempfile.TemporaryDirectory(prefix="tfjs_peer_") as tmp:
        _write_heads(Path(tmp) / "heads.f32", heatmaps, short_offsets, displacements)
        request = dict(data="heads.f32", batch=n, height=h, width=w, outputStride=output_stride,
                       maxPoseDetections=settings.max_poses,
                       scoreThreshold=float(settings.score_threshold),
                       nmsRadius=float(settings.nms_radius))
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        out = Path(tmp) / "poses.json"
        proc = subprocess.run(["node", str(SCRIPT), str(Path(tmp) / "request.json"), str(out)],
                              cwd=PEERS, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"TF.js peer failed ({proc.returncode}): {proc.stderr.strip()}")
        result = json.loads(out.read_text())
    if result["backend"] != "cpu":
        raise RuntimeError(f"TF.js peer ran on backend {result['backend']!r}, not cpu")
    return result["images"]


def _pack_image(poses: list, max_poses: int):
    packed = [(np.array([[k["y"], k["x"]] for k in p["keypoints"]], np.float64),
               np.array([k["score"] for k in p["keypoints"]], np.float64), p["score"])
              for p in poses]
    return pack_poses(packed, max_poses)


def decode_multiple_poses_tfjs_peer(heatmaps, short_offsets, displacements, output_stride: int,
                                    settings: MultiPoseSettings):
    """TF.js's decoding of batched heads (heatmap logits [N,h,w,17], short offsets
    [N,h,w,34], displacements [N,h,w,64] in onnxpose's layout), packed like
    ``decode_multiple_poses_tfjs``: keypoints [N,P,17,3] (y, x, score), pose scores [N,P],
    pose counts [N], poses in decoding order (values rounded to float32 by the packing)."""
    if not tfjs_available():
        raise RuntimeError(f"TF.js peer not installed or out of date with {LOCK.name}: "
                           f"{INSTALL_HINT}")
    _check_settings(settings)
    heatmaps = np.asarray(heatmaps, np.float32)
    if heatmaps.shape[-1] != NUM_KEYPOINTS or np.asarray(displacements).shape[-1] != 4 * NUM_EDGES:
        raise ValueError("expected heatmaps [..., 17] and displacements [..., 64]")
    images = _run_node(heatmaps, np.asarray(short_offsets, np.float32),
                       np.asarray(displacements, np.float32), output_stride, settings)
    return stack_batch([_pack_image(poses, settings.max_poses) for poses in images])
