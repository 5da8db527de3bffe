#!/usr/bin/env python3
"""The multi-pose models of two revisions side by side: the same shared PoseNet built by
an earlier revision of onnxpose (``--base``, default the last commit before the decoder
was split into phases) and by this tree, timed in one process in alternating blocks
(CPU, batch 1, the shared photo), so that a refactoring can show it costs nothing.

For each preset (coral, tfjs, coral with the heap tie order) and each revision: the
median latency of the full built model, and the ratio this/base. The base models are
built by the base revision's own code in a child process (a temporary ``git worktree``).

    python3 benchmarks/revision_latency.py [--base 6641c40] [--runs 300] [--warmup 20]
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

DEFAULT_OUT = RESULTS / "revision_latency.json"
BASE = "6641c40"
#: preset -> (preset name, settings overrides); every variant has at most 64 candidates on the
#: shared photo, so the base revision's cap of 64 and this tree's "all" build the same decoder
VARIANTS = {"coral": ("coral", {}), "tfjs": ("tfjs", {}),
            "coral-heap": ("coral", {"tie_order": "heap"})}
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


def build_base(base: str, model: Path, out: Path, tmp: Path) -> None:
    tree = tmp / "base"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), base],
                   check=True)
    try:
        subprocess.run([sys.executable, "-c", BUILD, str(model), str(out), json.dumps(VARIANTS)],
                       cwd=tree, check=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                       check=False)


def main(argv=None) -> int:
    import argparse
    base_parser = argparse.ArgumentParser(add_help=False)
    base_parser.add_argument("--base", default=BASE)
    known, rest = base_parser.parse_known_args(argv)
    args = parse_args(__doc__.splitlines()[0], DEFAULT_OUT, rest)

    from onnxpose.bench.cases import CaseSpec, OrtRunner
    from onnxpose.bench.options import CPU, session_options
    from onnxpose.bench.timing import measure_group
    from onnxpose.build import build_model
    from onnxpose.spec import MultiPoseSettings

    if missing_model("revision_latency", args):
        return 2
    options = session_options(args.threads)
    with tempfile.TemporaryDirectory(prefix="onnxpose-revisions-") as tmp:
        tmp = Path(tmp)
        (tmp / "base_models").mkdir()
        build_base(known.base, args.model, tmp / "base_models", tmp)
        system, _, _, feed = prepare_model(args, tmp, multi=True)
        runners = {}
        for name, (preset, overrides) in VARIANTS.items():
            this = tmp / f"this_{name}.onnx"
            build_model(args.model, this, decoder="multi",
                        multi=MultiPoseSettings.for_preset(preset, **overrides))
            for revision, path in (("base", tmp / "base_models" / f"{name}.onnx"),
                                   ("this", this)):
                case = f"{revision}-{name}"
                runners[case] = OrtRunner(CaseSpec(case, f"{name} built by {revision}", "multi",
                                                   None), path, CPU, [CPU], options, feed,
                                          False, None)
        measured = measure_group(runners, args.runs, args.warmup)
    medians = {name: statistics.median(m.samples_ms) for name, m in measured.items()}
    ratios = {name: round(medians[f"this-{name}"] / medians[f"base-{name}"], 4)
              for name in VARIANTS}
    for name in VARIANTS:
        print(f"{name:<11} base {medians[f'base-{name}']:7.3f} ms  this "
              f"{medians[f'this-{name}']:7.3f} ms  this/base {ratios[name]:.3f}")
    write_result(args, argv, "onnxpose.revision_latency/1", "revision_latency",
                 {"base": known.base, "ratio_this_to_base": ratios}, measured, system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
