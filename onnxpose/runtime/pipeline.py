"""`onnxpose predict` over many inputs on one machine (the local engine).

    sources ─▶ items (videos decoded in order) ─▶ reading pool: decode + resize (threads)
            ─▶ batches of B equal-shape tensors ─▶ PoseSession.run ─▶ records (JSONL) + overlays

The reading pool keeps up to ``4 * B`` prepared items ahead of the session, so the session does
not wait for I/O. A fault (unreadable file, broken frame) is reported in one line, counted and
skipped; records already written stay (``jsonl.JsonlWriter``).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.runtime.sources import Fault, Item


@dataclass(frozen=True)
class PredictOptions:
    batch: int = 8
    every: int = 1
    jsonl: Path | None = None
    parquet: Path | None = None
    out: Path | None = None
    resume: bool = False
    min_score: float = 0.2
    threads: int = 0            # reading threads; 0: min(4, CPUs)
    progress: bool = True


@dataclass(frozen=True)
class Prepared:
    item: Item
    tensor: np.ndarray          # [1, ...] model input
    size: tuple[int, int]       # original (height, width)
    image: object = None        # the RGB image, kept only for overlays


def iter_items(sources, every: int = 1, skip=frozenset()):
    """Items (or Faults) of every source in order: each image, and every ``every``-th frame of
    each video. Keys in ``skip`` ((path, frame) pairs, from --resume) are left out."""
    from onnxpose.runtime.video import iter_video_frames

    for source in sources:
        if source.kind == "image":
            if (source.path, None) not in skip:
                yield Item(source)
            continue
        for frame in iter_video_frames(source, every):
            if isinstance(frame, Fault) or frame.key not in skip:
                yield frame


def reading_threads(requested: int) -> int:
    return requested if requested > 0 else max(1, min(4, os.cpu_count() or 1))


def prepare(preprocess, item: Item, keep_image: bool) -> Prepared | Fault:
    """Decode (images) and resize one item with ``preprocess`` (PoseSession.preprocess, which is
    thread-safe); an unreadable image becomes a Fault."""
    from onnxpose.runtime.images import load_image
    try:
        image = load_image(item.image if item.image is not None else item.source.path)
        tensor, sizes = preprocess([image])
    except OnnxPoseError as exc:
        return Fault(item.source, exc.reason, item.frame)
    return Prepared(item, tensor, sizes[0], image if keep_image else None)


def prefetch(items, work, threads: int, depth: int, stop: threading.Event):
    """``work(item)`` for each Item in a pool of ``threads``, results in input order, at most
    ``depth`` ahead; Faults pass straight through. The items are iterated in a feeder thread."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="onnxpose-read")
    end = object()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                pending.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed():
        try:
            for item in items:
                if isinstance(item, Fault):
                    done: Future = Future()
                    done.set_result(item)
                    item = done
                else:
                    item = pool.submit(work, item)
                if not put(item):
                    return
        except BaseException as exc:  # an unexpected error in the feeder reaches the caller
            done = Future()
            done.set_exception(exc)
            put(done)
        put(end)

    feeder = threading.Thread(target=feed, name="onnxpose-feed", daemon=True)
    feeder.start()
    try:
        while True:
            future = pending.get()
            if future is end:
                return
            yield future.result()
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


def batches(prepared, size: int):
    """Runs of up to ``size`` Prepared items whose tensors stack (same shape); Faults alone."""
    run: list[Prepared] = []
    for entry in prepared:
        if isinstance(entry, Fault):
            yield [entry]
            continue
        if run and (len(run) == size or run[0].tensor.shape != entry.tensor.shape):
            yield run
            run = []
        run.append(entry)
    if run:
        yield run


def run_session(session, run: list[Prepared]):
    """The PoseResults (original pixels) of one batch of Prepared items."""
    from onnxpose.runtime.results import results_from_outputs
    outputs = session.run(np.concatenate([p.tensor for p in run]))
    return results_from_outputs(outputs, session.info, [p.size for p in run])


def run_local(session, sources, options: PredictOptions, done=frozenset(), log=None):
    """Run every item of ``sources`` through ``session``; write JSONL/Parquet/overlays."""
    from onnxpose.runtime.jsonl import make_record
    from onnxpose.runtime.sinks import RecordSink

    sink = RecordSink(options, sources, skipped=len(done), log=log)
    stop = threading.Event()
    items = iter_items(sources, options.every, done)
    keep = options.out is not None
    work = lambda item: prepare(session.preprocess, item, keep)  # noqa: E731
    threads = reading_threads(options.threads)
    complete = False
    try:
        for run in batches(prefetch(items, work, threads, 4 * options.batch, stop), options.batch):
            if isinstance(run[0], Fault):
                sink.fault(run[0])
                continue
            for entry, result in zip(run, run_session(session, run)):
                item = entry.item
                sink.record(make_record(item.source.path, item.frame, item.timestamp, result),
                            item, entry.image, result)
        complete = True
    finally:
        stop.set()
        sink.close(complete)
    return sink.summary
