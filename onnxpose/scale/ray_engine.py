"""`onnxpose predict --engine ray`: the predict pipeline on Ray Data (the ``ray`` extra).

    from_items(sources) ─map_batches(decode_source, tasks)─▶ rows: one per image / kept frame,
        the model input tensor (decoded and resized as PoseSession does), or a fault
    ─map_batches(PoseActor, --num-actors actors, --gpus-per-actor)─▶ one record per row
    ─iter_rows (in input order)─▶ the same RecordSink as the local engine (JSONL, Parquet)

Each actor holds one onnxruntime session, made from the model's bytes (shipped with the
actor, so workers need no shared model path; the inputs must be readable on the workers).
``ray.init()`` starts a local Ray, or joins the cluster at ``RAY_ADDRESS``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from onnxpose.runtime.sources import Fault, Source

_NO_FRAME = -1


def info_preprocess(info):
    """PoseSession.preprocess from the model's metadata alone (for the reading tasks)."""
    from onnxpose.runtime.images import load_image, to_input_tensor

    def preprocess(images):
        loaded = [load_image(im) for im in images]
        return to_input_tensor(loaded, info), [(im.height, im.width) for im in loaded]
    return preprocess


def _rows(entries, blank) -> dict:
    """A numpy batch from Prepared items and Faults (faults carry a blank tensor)."""
    from onnxpose.runtime.pipeline import Prepared
    rows = {"path": [], "frame": [], "timestamp": [], "height": [], "width": [], "fault": [],
            "pixels": []}
    for entry in entries:
        prepared = isinstance(entry, Prepared)
        item = entry.item if prepared else entry
        frame = item.frame
        rows["path"].append(item.source.path)
        rows["frame"].append(_NO_FRAME if frame is None else frame)
        rows["timestamp"].append(math.nan if not prepared or item.timestamp is None else item.timestamp)
        rows["height"].append(entry.size[0] if prepared else 0)
        rows["width"].append(entry.size[1] if prepared else 0)
        rows["fault"].append("" if prepared else entry.reason)
        rows["pixels"].append(entry.tensor[0] if prepared else blank)
    return {"path": np.array(rows["path"], dtype=object), "frame": np.array(rows["frame"], np.int64),
            "timestamp": np.array(rows["timestamp"], np.float64),
            "height": np.array(rows["height"], np.int64), "width": np.array(rows["width"], np.int64),
            "fault": np.array(rows["fault"], dtype=object), "pixels": np.stack(rows["pixels"])}


def decode_source(batch: dict, info, every: int, chunk: int):
    """Ray task (generator): each source of ``batch`` → rows of at most ``chunk`` items."""
    from onnxpose.runtime.pipeline import iter_items, prepare
    from PIL import Image

    preprocess = info_preprocess(info)
    blank = preprocess([Image.new("RGB", (1, 1))])[0][0] * 0
    sources = [Source(str(p), str(k), str(r)) for p, k, r in
               zip(batch["path"], batch["kind"], batch["relative"])]
    entries = []
    for item in iter_items(sources, every):
        entries.append(item if isinstance(item, Fault) else prepare(preprocess, item, False))
        if len(entries) == chunk:
            yield _rows(entries, blank)
            entries = []
    if entries:
        yield _rows(entries, blank)


class PoseActor:
    """One onnxruntime session per actor; a batch of rows → their records (JSON text)."""

    def __init__(self, model_bytes: bytes, providers):
        from onnxpose.runtime.session import PoseSession
        fd, path = tempfile.mkstemp(suffix=".onnx", prefix="onnxpose-actor-")
        with os.fdopen(fd, "wb") as f:
            f.write(model_bytes)
        self.session = PoseSession(path, providers=providers)
        os.unlink(path)

    def __call__(self, batch: dict) -> dict:
        from onnxpose.runtime.jsonl import make_record
        from onnxpose.runtime.results import results_from_outputs
        ok = np.flatnonzero(batch["fault"] == "")
        records = np.full(len(batch["fault"]), "", dtype=object)
        if len(ok):
            sizes = [(int(batch["height"][i]), int(batch["width"][i])) for i in ok]
            outputs = self.session.run(np.ascontiguousarray(batch["pixels"][ok]))
            results = results_from_outputs(outputs, self.session.info, sizes)
            for i, result in zip(ok, results):
                frame = int(batch["frame"][i])
                stamp = float(batch["timestamp"][i])
                record = make_record(str(batch["path"][i]), None if frame == _NO_FRAME else frame,
                                     None if math.isnan(stamp) else stamp, result)
                records[i] = json.dumps(record, allow_nan=False)
        return {"path": batch["path"], "frame": batch["frame"], "fault": batch["fault"],
                "record": records}


def _init_ray(progress: bool):
    import ray
    if not ray.is_initialized():  # RAY_ADDRESS (if set) joins that cluster
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = progress
    return ray


def run_ray(model, sources, options, providers="auto", num_actors: int = 1,
            gpus_per_actor: float = 0.0):
    """Run the sources on Ray Data; records go to the same sink as the local engine's."""
    import ray.data  # noqa: F401  (the extra is checked by the CLI before)

    from onnxpose.runtime.session import PoseSession
    from onnxpose.runtime.sinks import RecordSink

    info = PoseSession(model, providers=["cpu"]).info   # checks the model on the driver
    ray = _init_ray(options.progress)
    table = [{"path": s.path, "kind": s.kind, "relative": s.relative} for s in sources]
    dataset = ray.data.from_items(table, override_num_blocks=max(1, min(len(table), 200)))
    dataset = dataset.map_batches(decode_source, batch_size=1, batch_format="numpy",
                                  fn_kwargs={"info": info, "every": options.every,
                                             "chunk": options.batch})
    actor_options = {"num_gpus": gpus_per_actor} if gpus_per_actor else {}
    dataset = dataset.map_batches(PoseActor, batch_size=options.batch, batch_format="numpy",
                                  concurrency=num_actors,
                                  fn_constructor_kwargs={"model_bytes": Path(model).read_bytes(),
                                                         "providers": providers},
                                  **actor_options)
    by_path = {s.path: s for s in sources}
    sink = RecordSink(options, sources)
    complete = False
    try:
        for row in dataset.iter_rows():
            if row["fault"]:
                frame = int(row["frame"])
                sink.fault(Fault(by_path[row["path"]], row["fault"],
                                 None if frame == _NO_FRAME else frame))
            else:
                sink.record(json.loads(row["record"]))
        complete = True
    finally:
        sink.close(complete)
    return sink.summary
