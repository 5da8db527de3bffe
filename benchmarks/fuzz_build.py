"""Fuzz `onnxpose build` and `onnxpose inspect` with mutated and truncated model files.

    python3 benchmarks/fuzz_build.py --cases 2000 [--seed 1] [--targets tflite_quant,onnx_source]
                                     [--timeout 180] [--out benchmarks/results/fuzz_build.json]

Targets: the two real TFLite models in ``$ONNXPOSE_SHARED/models`` (flatbuffer-aware edits
of their tables), an onnxpose-built ONNX model and a raw PoseNet-like ONNX model (protobuf-aware
edits that keep the wire format valid, plus plain byte edits), and a small PoseNet-like
SavedModel (edits of ``saved_model.pb``). Each case runs the real CLI entry point
(``onnxpose.cli.main``) in a worker process; a supervisor restarts the worker if a case kills
it (counted as ``crash``) or runs longer than ``--timeout`` s (``hang``).

A case passes when it ends in exactly one ``onnxpose: error: ...`` line with exit status 2
(status 1, an internal error, counts as a failure), or, for ``build``, exit 0 with an output
model that passes ``onnx.checker`` and runs in ``PoseSession``; a failed build must leave no
file at the output path, a pre-existing output untouched and no stray temp files.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared")).resolve()
TARGETS = ("tflite_quant", "tflite_decoder", "onnx_built", "onnx_source", "savedmodel")
SENTINEL = b"previous output, must survive a failed build\n"


# ------------------------------------------------------------------------------ seeds

def make_seeds(directory: Path) -> dict[str, Path]:
    """The unmutated inputs, one per target."""
    import onnx
    from onnxpose.build import build_model
    from onnxpose.testing.toy_models import toy_posenet_onnx, toy_posenet_savedmodel

    directory.mkdir(parents=True, exist_ok=True)
    seeds = {"tflite_quant": SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite",
             "tflite_decoder": SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant_decoder.tflite"}
    source = directory / "toy_source.onnx"
    onnx.save(toy_posenet_onnx(input_hw=(33, 33), head_dtype="uint8", input_dtype="uint8"), source)
    seeds["onnx_source"] = source
    built = directory / "toy_built.onnx"
    build_model(source, built)
    seeds["onnx_built"] = built
    savedmodel = directory / "toy_savedmodel"
    if not (savedmodel / "saved_model.pb").is_file():
        toy_posenet_savedmodel(savedmodel)
    seeds["savedmodel"] = savedmodel
    return seeds


# ------------------------------------------------------------------------------ mutations

def mutate(target: str, data: bytes, rng: random.Random, cache: dict) -> tuple[bytes, str]:
    """One mutated variant of ``data`` and a short description of the edit."""
    from onnxpose.testing import toy_models as tm

    if target.startswith("tflite"):
        positions = cache.setdefault(target, tm.tflite_structure_positions(data))
        edits = []
        out = data
        for _ in range(rng.choice((1, 1, 1, 2, 3, 6))):
            op = rng.choice(("flip", "flip", "set_u32", "set_u32", "delete", "insert", "zero",
                             "truncate" if rng.random() < 0.2 else "flip"))
            position = rng.randrange(len(out)) if op == "truncate" else rng.choice(positions)
            value = (rng.choice(tm.INTERESTING_U32) if rng.random() < 0.7
                     else rng.randrange(1 << 32)) if op == "set_u32" else rng.randrange(256)
            length = rng.choice((1, 2, 4, 8, 16))
            out = tm.mutate_bytes(out, op, position, value, length)
            edits.append(f"{op}@{position}:{value}/{length}")
            positions = positions if len(out) == len(data) else list(range(len(out)))
        return out, " ".join(edits)
    fields = cache.setdefault(target, tm.proto_parse(data))
    if rng.random() < 0.15:  # plain byte damage
        op = rng.choice(("truncate", "flip", "delete", "insert"))
        position, value = rng.randrange(len(data)), rng.randrange(256)
        return tm.mutate_bytes(data, op, position, value, rng.choice((1, 3, 8))), f"{op}@{position}:{value}"
    leaves = len(tm.proto_leaves(fields))
    edits, out, current = [], data, fields
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.choice(tm.PROTO_MUTATIONS)
        leaf, value = rng.randrange(leaves), rng.randrange(1 << 16)
        out = tm.proto_mutate(out, leaf, op, value, fields=current)
        edits.append(f"{op}#{leaf}:{value}")
        current = tm.proto_parse(out)
        if not current:
            break
        leaves = len(tm.proto_leaves(current))
    return out, " ".join(edits)


# ------------------------------------------------------------------------------ one case

def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv); stderr includes what native code (TensorFlow, onnxruntime) writes to fd 2."""
    from onnxpose.cli import main
    out, err = io.StringIO(), io.StringIO()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        native = sink.read().decode(errors="replace")
    return code, out.getvalue(), native + err.getvalue()


def multi_pose_available() -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) is not None
               for m in ("onnxpose.decoder.multi_pose", "onnxpose.reference.multi_pose"))


def check_case(command: str, source: Path, output: Path, preexisting: bool,
               extra: tuple = ()) -> tuple[str, str]:
    """(verdict, detail). Verdicts: built, inspected, error (all passes) or FAIL:<why>."""
    code, out, err = run_cli(["build", str(source), "-o", str(output), "-q", *extra]
                             if command == "build" else ["inspect", str(source), "--json"])
    lines = [line for line in err.splitlines() if line.strip()]
    stray = sorted(p.name for p in output.parent.iterdir() if p.name != output.name)
    if "Traceback" in err:
        return "FAIL:traceback", err[-300:]
    if command == "build" and stray:
        return "FAIL:stray_files", ", ".join(stray)
    if code == 0:
        if command == "inspect":
            json.loads(out)
            return "inspected", ""
        try:
            import onnx
            from onnxpose.runtime.session import PoseSession
            import numpy as np
            onnx.checker.check_model(onnx.load(str(output)), full_check=True)
            result = PoseSession(output, providers=["cpu"]).predict(np.zeros((20, 30, 3), np.uint8))
            if not np.all(np.isfinite(result.keypoints)):
                return "FAIL:nonfinite_keypoints", ""
        except Exception as exc:  # noqa: BLE001
            return "FAIL:invalid_output", f"{type(exc).__name__}: {exc}"[:300]
        return "built", ""
    if len(lines) != 1 or not lines[0].startswith("onnxpose: error: "):
        return "FAIL:not_one_line", err[-300:]
    if code != 2:
        return "FAIL:internal_error", lines[0][:300]
    if command == "build":
        if preexisting and output.read_bytes() != SENTINEL:
            return "FAIL:output_touched", lines[0][:200]
        if not preexisting and output.exists():
            return "FAIL:output_left", lines[0][:200]
    return "error", lines[0][:300]


def case_input(target: str, seed_path: Path, index: int, seed: int, work: Path, cache: dict):
    rng = random.Random(f"{seed}:{index}")
    pb = seed_path / "saved_model.pb" if seed_path.is_dir() else seed_path
    data = cache.get(("data", target))
    if data is None:
        data = cache[("data", target)] = pb.read_bytes()
    mutated, edit = mutate(target, data, rng, cache)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if seed_path.is_dir():
        source = work / "model"
        shutil.copytree(seed_path, source)
        (source / "saved_model.pb").write_bytes(mutated)
    else:
        source = work / f"model{seed_path.suffix}"
        source.write_bytes(mutated)
    outdir = work / "out"
    outdir.mkdir()
    output = outdir / "built.onnx"
    preexisting = rng.random() < 0.5
    if preexisting:
        output.write_bytes(SENTINEL)
    command = "inspect" if rng.random() < 0.25 else "build"
    return source, output, preexisting, command, edit


# ------------------------------------------------------------------------------ worker / supervisor

def worker(args) -> None:
    """Run cases from --start on; one JSON line per case on stdout (real stdout: fd 3)."""
    report = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # TensorFlow/onnxruntime chatter must not corrupt the protocol
    seeds = {k: Path(v) for k, v in json.loads(args.seeds).items()}
    targets = args.targets.split(",")
    work = Path(tempfile.mkdtemp(prefix="onnxpose-fuzz-"))
    cache: dict = {}
    try:
        for index in range(args.start, args.cases):
            target = targets[index % len(targets)]
            source, output, preexisting, command, edit = case_input(
                target, seeds[target], index, args.seed, work / "case", cache)
            report.write(json.dumps({"index": index, "start": True}) + "\n")
            started = time.monotonic()
            # the Coral model defaults to multi-pose decoding; single until that decoder exists
            extra = () if target != "tflite_decoder" or multi_pose_available() else ("--decoder", "single")
            verdict, detail = check_case(command, source, output, preexisting, extra)
            detail = detail.replace(str(work / "case") + os.sep, "")
            report.write(json.dumps({"index": index, "target": target, "command": command,
                                     "edit": edit, "verdict": verdict, "detail": detail,
                                     "seconds": round(time.monotonic() - started, 3)}) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replay(args) -> None:
    seeds = make_seeds(Path(args.work) / "seeds")
    targets = args.targets.split(",")
    target = targets[args.replay % len(targets)]
    source, output, preexisting, command, edit = case_input(
        target, seeds[target], args.replay, args.seed, Path(args.work) / "replay", {})
    argv = (["build", str(source), "-o", str(output)] if command == "build"
            else ["inspect", str(source), "--json"])
    if target == "tflite_decoder" and command == "build" and not multi_pose_available():
        argv += ["--decoder", "single"]
    print(f"case {args.replay}: {target} {edit}\nonnxpose {' '.join(argv)}", flush=True)
    os.environ["ONNXPOSE_DEBUG"] = "1"
    from onnxpose.cli import main as cli_main
    cli_main(argv)


def supervise(args) -> dict:
    seeds_dir = Path(args.work) / "seeds"
    seeds = {k: str(v) for k, v in make_seeds(seeds_dir).items()}
    targets = args.targets.split(",")
    results, start = [], 0
    began = time.monotonic()
    while start < args.cases:
        cmd = [sys.executable, __file__, "--worker", "--start", str(start), "--cases", str(args.cases),
               "--seed", str(args.seed), "--targets", args.targets, "--seeds", json.dumps(seeds)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        current, started = None, time.monotonic()
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not selector.select(timeout=1.0):
                if current is not None and time.monotonic() - started > args.timeout:
                    proc.kill()
                    proc.wait()
                    results.append({"index": current, "target": targets[current % len(targets)],
                                    "verdict": "FAIL:hang", "detail": f">{args.timeout}s"})
                    start = current + 1
                    break
                continue
            line = proc.stdout.readline()
            if not line:  # the worker died
                code = proc.wait()
                if current is not None:
                    results.append({"index": current, "target": targets[current % len(targets)],
                                    "verdict": "FAIL:crash", "detail": f"worker exit {code}"})
                    start = current + 1
                else:
                    start = args.cases
                break
            message = json.loads(line)
            if message.get("start"):
                current, started = message["index"], time.monotonic()
                continue
            results.append(message)
            current = None
            start = message["index"] + 1
            done = len(results)
            if done % 50 == 0 or message["verdict"].startswith("FAIL"):
                print(f"[{done}/{args.cases}] {message['target']} {message['command']} "
                      f"{message['verdict']} {message['detail'][:150]}", flush=True)
        selector.close()
    elapsed = time.monotonic() - began
    by_target = collections.defaultdict(collections.Counter)
    for r in results:
        by_target[r["target"]][r["verdict"]] += 1
    failures = [r for r in results if r["verdict"].startswith("FAIL")]
    errors = collections.Counter(r["detail"].split(": ", 3)[-1][:90] for r in results
                                 if r["verdict"] == "error")
    summary = {"cases": len(results), "seed": args.seed, "seconds": round(elapsed, 1),
               "max_case_seconds": max((r.get("seconds", 0) for r in results), default=0),
               "verdicts": dict(collections.Counter(r["verdict"] for r in results)),
               "by_target": {k: dict(v) for k, v in by_target.items()},
               "failures": failures[:200],
               "slowest": sorted(({k: r.get(k) for k in ("index", "target", "command", "verdict",
                                                         "seconds", "detail")} for r in results),
                                 key=lambda r: -(r["seconds"] or 0))[:5],
               "top_errors": errors.most_common(25)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "onnxpose-fuzz-seeds"))
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    parser.add_argument("--replay", type=int, default=None, metavar="INDEX",
                        help="re-create case INDEX (same --seed/--targets) under --work/replay, "
                             "print its command line and run it with ONNXPOSE_DEBUG=1")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.replay is not None:
        replay(args)
        return
    summary = supervise(args)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
