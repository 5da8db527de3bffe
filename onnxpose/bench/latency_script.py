"""What the CPU latency scripts in benchmarks/ share: their command line, the check that the
real model is there, and the JSON file they write (``write_json``, ``write_result``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared")).resolve()
MODEL = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
IMAGE = SHARED / "images" / "test_couple.jpg"
RESULTS = REPO / "benchmarks" / "results" / "cpu-2core"


def parse_args(description: str, default_out: Path, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--image", type=Path, default=IMAGE if IMAGE.exists() else None)
    parser.add_argument("--runs", type=int, default=300, help="timed runs per case")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="intra_op_num_threads")
    parser.add_argument("--out", type=Path, default=default_out)
    return parser.parse_args(argv)


def missing_model(script: str, args) -> bool:
    """Say so (one line) when the model is missing."""
    if args.model.exists():
        return False
    print(f"{script}: missing {args.model}: set ONNXPOSE_SHARED to the shared/ directory",
          file=sys.stderr)
    return True


def prepare_model(args, workdir: Path, multi: bool):
    """(machine info, prepared models, the batch-1 input, its feed) for ``args.model``."""
    from onnxpose.bench.models import make_inputs, prepare
    from onnxpose.bench.system import system_info
    args.out.parent.mkdir(parents=True, exist_ok=True)
    system = system_info("cpu-2core" if os.cpu_count() == 2 else None, args.threads)
    prepared = prepare(args.model, workdir, multi=multi, tflite=False)
    batch_input = make_inputs(prepared.info, (1,), args.image)[1]
    return system, prepared, batch_input, {prepared.info.input_name: batch_input}


def write_json(out: Path, schema: str, script: str, argv, fields: dict) -> None:
    """A benchmark's JSON file: schema, creation time and the command line of
    ``benchmarks/<script>.py``, then ``fields``; written atomically, readable by all."""
    from onnxpose.bench.charts import readable
    from onnxpose.io import atomic_output
    result = {
        "schema": schema,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python3 benchmarks/{script}.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        **fields,
    }
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        readable(tmp)
    print(f"wrote {out}", file=sys.stderr)


def write_result(args, argv, schema: str, script: str, fields: dict, measured: dict,
                 system: dict) -> None:
    """The result file of a latency script (``write_json``): the settings of the run (model,
    input, runs), then ``fields``, the summaries and raw samples of ``measured`` and the
    machine (with its load at the end)."""
    from onnxpose.bench.system import load_average
    from onnxpose.bench.timing import summarize
    system["load_average_at_end"] = load_average()
    write_json(args.out, schema, script, argv, {
        "model": Path(args.model).name,
        "input": str(Path(args.image).name) if args.image else "random pixels (seed 0)",
        "provider": "CPUExecutionProvider", "batch": 1, "runs": args.runs, "warmup": args.warmup,
        "threads": args.threads,
        **fields,
        "summary": {name: summarize(m.samples_ms, 1) for name, m in measured.items()},
        "samples_ms": {name: [round(v, 4) for v in m.samples_ms] for name, m in measured.items()},
        "system": system,
    })
