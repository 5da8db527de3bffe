"""Which execution provider runs each decoder node (``--placement``).

Two sources, both from onnxruntime itself:
* node assignment (``session.record_ep_graph_assignment_info``): the provider
  each node is assigned to, in the optimized graph that the benchmark runs
  and, for nodes that onnxruntime's optimizer rewrote or fused away, in the
  graph before optimization;
* profiling (``SessionOptions.enable_profiling``): the provider recorded in the
  trace event of every kernel that actually ran (``args.provider``).
Decoder nodes are those named ``single_pose/``, ``multi_pose/`` or ``heads/``
(subgraph bodies included).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import onnx

from onnxpose.bench.options import session_options, short_name

DECODER_PREFIXES = ("single_pose/", "multi_pose/", "heads/")
KERNEL_SUFFIX = "_kernel_time"


def decoder_nodes(model: onnx.ModelProto, prefixes=DECODER_PREFIXES) -> list[dict]:
    """Every node named with a decoder prefix, with the node whose subgraph holds it (if any)."""
    found = []

    def walk(graph, parent):
        for node in graph.node:
            if node.name.startswith(prefixes):
                found.append({"name": node.name, "op_type": node.op_type, "parent": parent})
            for attribute in node.attribute:
                subgraphs = list(attribute.graphs) + ([attribute.g] if attribute.HasField("g") else [])
                for subgraph in subgraphs:
                    walk(subgraph, parent or node.name)

    walk(model.graph, None)
    return found


def assignment(session) -> dict[str, str]:
    """Node name → provider, from onnxruntime's recorded graph assignment."""
    try:
        subgraphs = session.get_provider_graph_assignment_info()
    except (AttributeError, RuntimeError):
        return {}
    return {node.name: subgraph.ep_name for subgraph in subgraphs for node in subgraph.get_nodes()}


def kernels_from_profile(path: str) -> dict[str, dict]:
    """Node name → {provider, op, calls, mean_us} from an onnxruntime profile trace."""
    with open(path, encoding="utf-8") as f:
        events = json.load(f)
    kernels: dict[str, dict] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue
        args = event.get("args", {})
        entry = kernels.setdefault(name[:-len(KERNEL_SUFFIX)], {
            "provider": args.get("provider"), "op": args.get("op_name"), "calls": 0, "total_us": 0})
        entry["calls"] += 1
        entry["total_us"] += int(event.get("dur", 0))
    for entry in kernels.values():
        entry["mean_us"] = round(entry.pop("total_us") / max(entry["calls"], 1), 1)
    return kernels


def placement_report(case_id: str, path, provider: str, providers: list, threads: int | None,
                     batch_input, input_name: str, workdir: Path, runs: int = 3) -> dict:
    """Provider of every decoder node of the model at ``path`` under ``providers``."""
    import onnxruntime as ort
    model = onnx.load(str(path))
    nodes = decoder_nodes(model)
    prefix = workdir / f"profile_{short_name(provider)}_{case_id}"
    options = session_options(threads, profile_prefix=str(prefix), record_assignment=True)
    session = ort.InferenceSession(str(path), options, providers=providers)
    for _ in range(runs):
        session.run(None, {input_name: batch_input})
    profile = session.end_profiling()
    try:
        kernels = kernels_from_profile(profile)
    finally:
        if profile and os.path.exists(profile):
            os.unlink(profile)
    optimized = assignment(session)
    session_providers = session.get_providers()
    del session
    unoptimized_session = ort.InferenceSession(
        str(path), session_options(threads, optimization="none", record_assignment=True),
        providers=providers)
    unoptimized = assignment(unoptimized_session)
    del unoptimized_session

    entries = []
    for node in nodes:
        name, parent = node["name"], node["parent"]
        kernel = kernels.get(name)
        if name in optimized:
            assigned, basis = optimized[name], "assigned in the optimized graph (as benchmarked)"
        elif name in unoptimized:
            assigned, basis = unoptimized[name], ("assigned before graph optimization (onnxruntime "
                                                  "then rewrote or fused this node)")
        elif parent and (parent in optimized or parent in unoptimized):
            assigned = optimized.get(parent) or unoptimized.get(parent)
            basis = f"runs inside {parent}"
        elif kernel is not None:
            assigned, basis = kernel["provider"], "profiled kernel"
        else:
            assigned, basis = None, "not reported by onnxruntime"
        entries.append({"name": name, "op_type": node["op_type"], "provider": assigned,
                        "basis": basis, "kernel_provider": kernel["provider"] if kernel else None,
                        "kernel_mean_us": kernel["mean_us"] if kernel else None})
    original = {n["name"] for n in nodes}
    added = [{"name": n, "provider": p} for n, p in sorted(optimized.items())
             if n.startswith(DECODER_PREFIXES) and n not in original]
    return {
        "case": case_id,
        "provider": short_name(provider),
        "session_providers": session_providers,
        "model_nodes": len(model.graph.node),
        "decoder_nodes": entries,
        "decoder_nodes_by_provider": dict(Counter(e["provider"] or "unknown" for e in entries)),
        "all_nodes_by_provider": dict(Counter(optimized.values())),
        "kernels_run_by_provider": dict(Counter(k["provider"] for k in kernels.values())),
        "optimizer_added_decoder_nodes": added,
        "profiled_runs": runs,
    }


def format_placement(report: dict) -> str:
    counts = ", ".join(f"{n} on {p}" for p, n in sorted(report["decoder_nodes_by_provider"].items()))
    return (f"placement {report['provider']} {report['case']}: "
            f"{len(report['decoder_nodes'])} decoder nodes: {counts or 'none'}")
