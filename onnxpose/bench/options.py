"""Execution providers for the benchmark: which to run, which to skip, and their settings.

A requested provider that does not really load here is skipped with one line
saying so; it is never replaced by another provider. TensorRT runs with an
engine cache (built once per model and batch size), optional fp16 and a
workspace limit; CUDA and TensorRT use IO binding so that inputs and outputs
stay on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from onnxpose.errors import OnnxPoseError
from onnxpose.runtime.providers import CPU, CUDA, TENSORRT, canonical, provider_loads, usable_providers

SHORT = {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}
DEVICE_PROVIDERS = (CUDA, TENSORRT)


def short_name(provider: str) -> str:
    return SHORT.get(provider, provider)


@dataclass(frozen=True)
class TensorrtOptions:
    fp16: bool = True
    cache_dir: Path | None = None  # default: <out>/trt_cache
    workspace_gib: float = 2.0


def parse_providers(requested) -> list[str]:
    """'cpu,cuda,tensorrt' (or 'all') or a list → full onnxruntime names, in order, no repeats."""
    import onnxruntime as ort
    if isinstance(requested, str) and requested.strip().lower() in ("auto", "all"):
        requested = "cpu,cuda,tensorrt"
    names = requested.split(",") if isinstance(requested, str) else list(requested)
    chosen: list[str] = []
    for raw in names:
        if not str(raw).strip():
            continue
        name = canonical(str(raw))
        if name not in ort.get_all_providers():
            raise OnnxPoseError(None, f"unknown execution provider {str(raw).strip()!r} "
                                      "(known: cpu, cuda, tensorrt or a full onnxruntime name)")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise OnnxPoseError(None, "no execution provider requested")
    return chosen


def skip_message(provider: str) -> str:
    usable = ", ".join(usable_providers()) or "none"
    return (f"skipping {short_name(provider)}: {provider} is not usable on this machine (its "
            f"libraries or device are missing; onnxruntime would silently fall back to the CPU); "
            f"usable here: {usable}")


def plan_providers(requested) -> tuple[list[str], list[dict]]:
    """(usable providers in the requested order, [{provider, reason}] for those skipped)."""
    usable, skipped = [], []
    for provider in parse_providers(requested):
        if provider_loads(provider):
            usable.append(provider)
        else:
            skipped.append({"provider": short_name(provider), "reason": skip_message(provider)})
    return usable, skipped


def shape_spec(inputs: dict[str, tuple[int, ...]]) -> str:
    """{"x": (1, 2, 3)} → "x:1x2x3" (several inputs comma-separated), TensorRT's profile syntax."""
    return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}" for name, shape in inputs.items())


def tensorrt_provider_options(options: TensorrtOptions, cache_dir: Path,
                              inputs: dict[str, tuple[int, ...]]) -> dict:
    """TensorRT EP settings; the profile pins the input shapes (batch included), so each
    batch size gets its own engine, kept in ``cache_dir``."""
    shape = shape_spec(inputs)
    return {
        "device_id": 0,
        "trt_fp16_enable": bool(options.fp16),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir.parent),
        "trt_max_workspace_size": int(options.workspace_gib * 2**30),
        "trt_profile_min_shapes": shape,
        "trt_profile_opt_shapes": shape,
        "trt_profile_max_shapes": shape,
    }


def cuda_provider_options() -> dict:
    return {"device_id": 0}


def provider_list(provider: str, *, trt: TensorrtOptions | None = None,
                  trt_cache_dir: Path | None = None,
                  inputs: dict[str, tuple[int, ...]] | None = None) -> list:
    """The ``providers=`` list for an InferenceSession whose main provider is ``provider``.

    CPU stays last so that nodes an accelerator cannot run fall back per node
    (the placement report shows which). ``inputs``: input shapes, for TensorRT's profile.
    """
    if provider == CPU:
        return [CPU]
    if provider == CUDA:
        return [(CUDA, cuda_provider_options()), CPU]
    if provider == TENSORRT:
        if trt_cache_dir is None or not inputs:
            raise ValueError("TensorRT needs an engine cache directory and the input shapes")
        trt_cache_dir.mkdir(parents=True, exist_ok=True)
        return [(TENSORRT, tensorrt_provider_options(trt or TensorrtOptions(), trt_cache_dir,
                                                     inputs)),
                (CUDA, cuda_provider_options()), CPU]
    return [provider, CPU]


def session_options(threads: int | None = None, *, optimization: str = "all",
                    profile_prefix: str | None = None, record_assignment: bool = False):
    """SessionOptions: ``threads`` → intra_op_num_threads (None: onnxruntime's default)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if record_assignment:
        options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    return options


def describe_providers(providers: list) -> list:
    """JSON-friendly copy of a providers list (options as strings)."""
    out = []
    for entry in providers:
        if isinstance(entry, tuple):
            out.append({"name": entry[0], "options": {k: str(v) for k, v in entry[1].items()}})
        else:
            out.append({"name": entry, "options": {}})
    return out
