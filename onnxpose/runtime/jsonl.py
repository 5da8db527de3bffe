"""The JSON Lines output of `onnxpose predict --jsonl` (schema in README, "JSON Lines records").

One record per image or kept video frame::

    {"source": str, "frame": int | null, "timestamp": float | null,
     "image_size": {"height": int, "width": int},
     "poses": [{"score": float, "box": [ymin, xmin, ymax, xmax],   # box: only with a boxes output
                "keypoints": [{"name": str, "y": float, "x": float, "score": float}] x 17}]}

``frame`` and ``timestamp`` (seconds) are null for images; y, x and box are in the source's
pixels; a non-finite number is written as null. Each record is written whole with one
``write`` on an O_APPEND descriptor and flushed, so an interrupted run leaves whole records.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.keypoints import KEYPOINT_NAMES


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def make_record(source: str, frame, timestamp, result) -> dict:
    """The record of one image/frame: ``result`` a PoseResult (its ``boxes``, in the source's
    pixels, give each pose's ``box`` when the model outputs boxes)."""
    height, width = result.image_size
    poses = []
    for index, (keypoints, score) in enumerate(zip(result.keypoints, result.scores)):
        pose = {"score": _num(score)}
        if result.boxes is not None:
            pose["box"] = [_num(v) for v in np.asarray(result.boxes[index]).reshape(-1)[:4]]
        pose["keypoints"] = [{"name": name, "y": _num(y), "x": _num(x), "score": _num(s)}
                             for name, (y, x, s) in zip(KEYPOINT_NAMES, keypoints)]
        poses.append(pose)
    return {"source": source, "frame": frame, "timestamp": timestamp,
            "image_size": {"height": int(height), "width": int(width)}, "poses": poses}


def dumps(record: dict) -> str:
    """One line of JSON (no NaN: make_record already wrote non-finite numbers as null)."""
    return json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"


def read_done(path: Path) -> set[tuple[str, int | None]]:
    """(source, frame) of every whole record in ``path`` (for --resume); a torn last line (a
    run killed mid-write) is cut off the file so that appending goes on from a whole record."""
    path = Path(path)
    if not path.exists():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    done = set()
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            done.add((record["source"], record["frame"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise OnnxPoseError(path, f"line {number} is not an onnxpose record ({exc}); "
                                      "--resume needs a JSONL written by onnxpose predict") from None
    return done


def check_jsonl_path(path: Path, resume: bool) -> Path:
    """Before any slow work: a new path, an empty file, or (with --resume) an existing one."""
    from onnxpose.io import check_output_path
    path = check_output_path(path)
    if path.exists() and path.stat().st_size > 0 and not resume:
        raise OnnxPoseError(path, "already exists; pass --resume to continue it, or remove it")
    return path


class JsonlWriter:
    """Appends whole records to ``path`` (created if new), each flushed to the OS at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OnnxPoseError(path, f"cannot write the file ({exc.strerror or exc})") from exc
        self.count = 0

    def write(self, record: dict) -> None:
        data = dumps(record).encode("utf-8")
        try:
            written = os.write(self.fd, data)
            while written < len(data):  # a short write (rare: signals, full pipes)
                written += os.write(self.fd, data[written:])
        except OSError as exc:
            raise OnnxPoseError(self.path, f"cannot write the file ({exc.strerror or exc})") from exc
        self.count += 1

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_parquet(path: Path, records: list[dict]) -> None:
    """The same records as one Parquet file (pyarrow, from the ``ray`` extra), written
    temp-then-rename; columns source, frame, timestamp, image_size, poses (nested)."""
    from onnxpose.errors import require_extra
    from onnxpose.io import atomic_output
    require_extra("ray", ("pyarrow",), "--parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    keypoint = pa.struct([("name", pa.string()), ("y", pa.float64()), ("x", pa.float64()),
                          ("score", pa.float64())])
    pose = pa.struct([("score", pa.float64()), ("box", pa.list_(pa.float64())),
                      ("keypoints", pa.list_(keypoint))])
    schema = pa.schema([("source", pa.string()), ("frame", pa.int64()),
                        ("timestamp", pa.float64()),
                        ("image_size", pa.struct([("height", pa.int64()), ("width", pa.int64())])),
                        ("poses", pa.list_(pose))])
    table = pa.Table.from_pylist(records, schema=schema)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)
