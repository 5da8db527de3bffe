#!/usr/bin/env python3
"""The multi-pose models of two revisions side by side: the same shared PoseNet built by
an earlier revision of onnxpose (``--base``, default the last commit before the decoder
was split into phases) and by this tree, timed in one process in alternating blocks
(CPU, the shared photo), together with the raw model (all heads out), so that a change
shows what it saves or costs with both revisions on the same machine state.

For each variant (``--variants``: names of ``onnxpose.bench.multi_pose_bench.PRESET_OVERRIDES``,
default coral-scan, tfjs-scan, coral-heap) and each batch (``--batch``, default 1): the
median latency of the full built model of each revision, the decode each adds to the raw
model (full - raw, and over raw), and the ratio this/base. The base models are built by
the base revision's own code in a child process (a temporary ``git worktree``).

The decoder part of each model (the built model cut at the raw model's outputs,
``onnxpose.bench.multi_pose_bench.decoder_part``: the 8-bit heads in, the decoder with the
heads' dequantization and onnxruntime's rewrites of it) is timed too, on the raw model's
heads of the photo, in a second group with one intra-op thread. Without the backbone's
13-20 ms in every sample it is far less noisy than full - raw on this shared machine, but
it leaves out what the decoder costs through the caches the backbone has evicted.

    python3 benchmarks/revision_latency.py [--base 6641c40] [--variants coral-scan,...]
        [--batch 1,8] [--runs 300] [--warmup 20] [--out FILE]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxpose.bench.latency_script import (REPO, RESULTS, missing_model, parse_args,  # noqa: E402
                                           prepare_model, write_result)
from onnxpose.bench.multi_pose_bench import PRESET_OVERRIDES  # noqa: E402

DEFAULT_OUT = RESULTS / "revision_latency.json"
BASE = "6641c40"
DEFAULT_VARIANTS = "coral-scan,tfjs-scan,coral-heap"
# run inside the base worktree: build each variant with that revision's build_model
BUILD = """
import json, sys
from onnxpose.build import build_model
from pathlib import Path
import onnxpose
if (Path(onnxpose.__file__).parent / "spec.py").exists():
    from onnxpose.spec import MultiPoseSettings
else:  # before the spec moved to the ground floor
    from onnxpose.decoder.settings import MultiPoseSettings
model, out, variants = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
for name, (preset, overrides) in variants.items():
    build_model(model, f"{out}/{name}.onnx", decoder="multi",
                multi=MultiPoseSettings.for_preset(preset, **overrides))
"""


def base_overrides(preset: str, overrides: dict) -> dict:
    """What the base revision is told: a scan tie order is its only order before tie orders
    existed, so ``tie_order="scan"`` is left out (the preset's default there and here)."""
    return {k: v for k, v in overrides.items() if (k, v) != ("tie_order", "scan")}


def build_base(base: str, model: Path, out: Path, tmp: Path, variants: dict) -> None:
    tree = tmp / "base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), base],
                   check=True)
    told = {name: (preset, base_overrides(preset, o)) for name, (preset, o) in variants.items()}
    try:
        subprocess.run([sys.executable, "-c", BUILD, str(model), str(out), json.dumps(told)],
                       cwd=tree, check=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       check=False)


def parse_all(argv):
    import argparse
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--base", default=BASE)
    own.add_argument("--variants", default=DEFAULT_VARIANTS)
    own.add_argument("--batch", default="1")
    known, rest = own.parse_known_args(argv)
    names = [v for v in known.variants.split(",") if v]
    unknown = [v for v in names if v not in PRESET_OVERRIDES]
    if unknown or not names:
        raise SystemExit(f"revision_latency: --variants: unknown {unknown or 'empty'}; "
                         f"choose from {','.join(PRESET_OVERRIDES)}")
    try:
        batches = [int(b) for b in known.batch.split(",")]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise SystemExit(f"revision_latency: --batch: {known.batch!r} is not a list of sizes >= 1")
    args = parse_args(__doc__.splitlines()[0], DEFAULT_OUT, rest)
    return known.base, {n: PRESET_OVERRIDES[n] for n in names}, batches, args


def summarize_batch(medians: dict, variants: dict) -> dict:
    raw = medians["raw-all"]
    rows = {}
    for name in variants:
        base, this = medians[f"base-{name}"], medians[f"this-{name}"]
        rows[name] = {"base_ms": base, "this_ms": this, "this_over_base": round(this / base, 4),
                      "base_added_ms": base - raw, "this_added_ms": this - raw,
                      "base_added_over_raw": (base - raw) / raw,
                      "this_added_over_raw": (this - raw) / raw}
        print(f"{name:<20} base {base:8.3f} ms (+{base - raw:6.3f}, {100 * (base - raw) / raw:5.1f}"
              f" %)  this {this:8.3f} ms (+{this - raw:6.3f}, {100 * (this - raw) / raw:5.1f} %)"
              f"  this/base {this / base:.3f}")
    return {"raw_all_ms": raw, "variants": rows}


def summarize_parts(medians: dict, variants: dict) -> dict:
    rows = {}
    for name in variants:
        base, this = medians.get(f"base-part-{name}"), medians.get(f"this-part-{name}")
        if base is None or this is None:
            continue
        rows[name] = {"base_ms": base, "this_ms": this, "this_over_base": round(this / base, 4)}
        print(f"{name:<20} decoder part: base {base:7.3f} ms  this {this:7.3f} ms  "
              f"this/base {this / base:.3f}")
    return rows


def decoder_parts(paths: dict, heads: list[str], tmp: Path) -> dict:
    """Every built model's decoder part (cut at the raw model's outputs ``heads``), by case
    name ("base-part-<variant>", "this-part-<variant>"); cut once, for every batch."""
    from onnxpose.bench.multi_pose_bench import decoder_part
    parts = {}
    for case, path in paths.items():
        if case == "raw-all":
            continue
        part = decoder_part(path, heads, tmp / f"part_{case}.onnx")
        if part is None:
            print(f"revision_latency: {case}: no tensors {heads}; decoder part not timed",
                  file=sys.stderr)
            continue
        parts[case.replace("-", "-part-", 1)] = part
    return parts


def timed(runners: dict, args, batch: int, what: str, measured: dict) -> dict | None:
    """``measure_group`` of ``runners``, each Measurement also kept in ``measured`` under
    "batch<B>/<case>"; None (after one line on stderr) when a case fails."""
    from onnxpose.bench.timing import measure_group
    print(f"batch {batch}: timing {len(runners)} {what} x {args.runs} runs", file=sys.stderr)
    group = measure_group(runners, args.runs, args.warmup)
    for case, m in group.items():
        if m.error:
            print(f"revision_latency: error: {case}: {m.error}", file=sys.stderr)
            return None
        measured[f"batch{batch}/{case}"] = m
    return group


def main(argv=None) -> int:
    base, variants, batches, args = parse_all(argv)
    import onnxruntime as ort
    from onnxpose.bench.cases import CaseSpec, OrtRunner
    from onnxpose.bench.models import make_inputs
    from onnxpose.bench.options import CPU, session_options
    from onnxpose.build import build_model
    from onnxpose.spec import MultiPoseSettings

    if missing_model("revision_latency", args):
        return 2
    options, part_options = session_options(args.threads), session_options(1)
    measured, table = {}, {}
    with tempfile.TemporaryDirectory(prefix="onnxpose-revisions-") as tmp:
        tmp = Path(tmp)
        (tmp / "base_models").mkdir()
        build_base(base, args.model, tmp / "base_models", tmp, variants)
        system, prepared, _, _ = prepare_model(args, tmp, multi=True)
        paths = {"raw-all": prepared.raw["raw_all"].path}
        for name, (preset, overrides) in variants.items():
            paths[f"this-{name}"] = tmp / f"this_{name}.onnx"
            build_model(args.model, paths[f"this-{name}"], decoder="multi",
                        multi=MultiPoseSettings.for_preset(preset, **overrides))
            paths[f"base-{name}"] = tmp / "base_models" / f"{name}.onnx"
        # the decoder parts read the raw model's heads (one thread, like the parts)
        raw = ort.InferenceSession(str(paths["raw-all"]), part_options, providers=[CPU])
        heads = [o.name for o in raw.get_outputs()]
        parts = decoder_parts(paths, heads, tmp)
        inputs = make_inputs(prepared.info, batches, args.image)

        def runners(cases: dict, case_feed: dict, case_options) -> dict:
            return {case: OrtRunner(CaseSpec(case, case, "multi", None), path, CPU, [CPU],
                                    case_options, case_feed, False, None)
                    for case, path in cases.items()}

        for batch in batches:
            feed = {prepared.info.input_name: inputs[batch]}
            head_feed = dict(zip(heads, raw.run(None, feed)))

            group = timed(runners(paths, feed, options), args, batch, "cases", measured)
            part_group = (timed(runners(parts, head_feed, part_options), args, batch,
                                "decoder parts", measured) if group is not None else None)
            if group is None or part_group is None:
                return 2
            print(f"batch {batch}:")
            table[batch] = summarize_batch({c: statistics.median(m.samples_ms)
                                            for c, m in group.items()}, variants)
            table[batch]["decoder_part"] = summarize_parts(
                {c: statistics.median(m.samples_ms) for c, m in part_group.items()}, variants)
    write_result(args, argv, "onnxpose.revision_latency/3", "revision_latency",
                 {"base": base, "batch": batches, "variants": list(variants),
                  "by_batch": {str(b): t for b, t in table.items()}}, measured, system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
