"""`onnxpose predict` over many inputs: option checks (before any slow work), then the local or
the Ray engine. The one-image form (one IMAGE, ``--out FILE``, ``--json``) stays in cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

from onnxpose.errors import OnnxPoseError, require_extra

RAY_EXTRA_MODULES = ("ray", "pyarrow")


def is_many(inputs, many: dict) -> bool:
    """The many-input pipeline: several INPUTs, a folder, a glob or a video, or any of its options."""
    from onnxpose.runtime.sources import is_batch_input
    forcing = {k: v for k, v in many.items() if k != "quiet" and v not in (None, False)}
    return len(inputs) > 1 or bool(forcing) or is_batch_input(str(inputs[0]))


def _refuse(option: str, reason: str):
    raise OnnxPoseError(None, f"{option} {reason}")


def check_options(out, as_json, jsonl, parquet, resume, engine, num_actors, gpus_per_actor,
                  threads) -> None:
    if as_json:
        _refuse("--json", "is for one image; use --jsonl FILE for many inputs")
    if resume and jsonl is None:
        _refuse("--resume", "needs --jsonl FILE (the records to continue)")
    if engine != "ray":
        for name, value in (("--num-actors", num_actors), ("--gpus-per-actor", gpus_per_actor)):
            if value is not None:
                _refuse(name, "needs --engine ray")
    else:
        if threads is not None:
            _refuse("--threads", "is for the local engine (Ray reads with its own tasks)")
        if out is not None:
            _refuse("--out", "overlays are written by the local engine only; use --jsonl or --parquet with --engine ray")
        if resume:
            _refuse("--resume", "is for the local engine")
        require_extra("ray", RAY_EXTRA_MODULES, "--engine ray")
    if parquet is not None:
        require_extra("ray", ("pyarrow",), "--parquet")


def predict_many(model, inputs, out, as_json, providers, min_score, *, jsonl, parquet, batch,
                 every, resume, engine, num_actors, gpus_per_actor, threads, quiet) -> None:
    from onnxpose.io import check_output_path
    from onnxpose.runtime.jsonl import check_jsonl_path, read_done
    from onnxpose.runtime.overlays import check_out_dir
    from onnxpose.runtime.pipeline import PredictOptions
    from onnxpose.runtime.sources import expand_inputs

    check_options(out, as_json, jsonl, parquet, resume, engine, num_actors, gpus_per_actor, threads)
    if jsonl is not None:
        check_jsonl_path(jsonl, resume)
    if parquet is not None:
        check_output_path(parquet)
    if not Path(model).is_file():
        raise OnnxPoseError(model, "no such model file")
    sources = expand_inputs(inputs)
    if any(s.kind == "video" for s in sources):
        from onnxpose.runtime.video import VIDEO_EXTRA_MODULES
        require_extra("video", VIDEO_EXTRA_MODULES, "reading video")
    if out is not None:
        out = check_out_dir(out)
    stdout = jsonl is None and parquet is None and out is None
    options = PredictOptions(batch=batch or 8, every=every or 1,
                             jsonl=Path("/dev/stdout") if stdout else jsonl, parquet=parquet,
                             out=out, resume=resume, min_score=min_score, threads=threads or 0,
                             progress=not quiet and not stdout)
    if engine == "ray":
        from onnxpose.scale.ray_engine import run_ray
        summary = run_ray(model, sources, options, providers=providers,
                          num_actors=num_actors or 1, gpus_per_actor=gpus_per_actor or 0.0)
    else:
        from onnxpose.runtime.session import PoseSession
        from onnxpose.runtime.pipeline import run_local
        session = PoseSession(model, providers=providers)
        done = read_done(jsonl) if resume else frozenset()
        summary = run_local(session, sources, options, done)
    print(summary.line(), file=sys.stderr)
