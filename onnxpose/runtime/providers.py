"""Execution-provider choice that never silently falls back.

onnxruntime-gpu lists the CUDA and TensorRT providers as *available* even on
machines whose CUDA/TensorRT libraries are missing; a session asked for them
then quietly runs on the CPU. ``usable_providers`` therefore probes each one
with a tiny model and keeps only those that really load.
"""

from __future__ import annotations

import contextlib
import functools
import io

from onnxpose.errors import OnnxPoseError

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)
ALIASES = {"tensorrt": TENSORRT, "trt": TENSORRT, "cuda": CUDA, "cpu": CPU}


def canonical(name: str) -> str:
    """'cuda' → 'CUDAExecutionProvider'; full names pass through."""
    return ALIASES.get(name.strip().lower(), name.strip())


@functools.lru_cache(maxsize=None)
def _tiny_model() -> bytes:
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    opsets = [helper.make_opsetid("", 17)]
    # the lowest IR version for opset 17, not the onnx package's newest: onnxruntime rejects
    # IR versions newer than it knows, and the probe would then call every provider unusable
    return helper.make_model(graph, opset_imports=opsets,
                             ir_version=helper.find_min_ir_version_for(opsets)).SerializeToString()


@functools.lru_cache(maxsize=None)
def provider_loads(provider: str) -> bool:
    """True if an onnxruntime session really gets ``provider`` (not a CPU fallback)."""
    import onnxruntime as ort
    if provider == CPU:
        return True
    if provider not in ort.get_available_providers():
        return False
    if provider == TENSORRT and not provider_loads(CUDA):
        return False  # TensorRT's provider needs CUDA's libraries too
    options = ort.SessionOptions()
    options.log_severity_level = 4
    ort.set_default_logger_severity(4)  # the failed library load is logged, not raised
    quiet = io.StringIO()  # onnxruntime prints "EP Error ... Falling back" on failure
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            session = ort.InferenceSession(_tiny_model(), options, providers=[provider, CPU])
        return provider in session.get_providers()
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(2)


def usable_providers() -> list[str]:
    """Providers that load here, in preference order TensorRT > CUDA > CPU."""
    return [p for p in PREFERENCE if provider_loads(p)]


def resolve_providers(requested="auto") -> list:
    """``"auto"``, a comma-separated string, or a list of names / (name, options) pairs.

    Raises OnnxPoseError naming the first requested provider that does not load. A provider
    named twice (``cpu,cpu``, ``cuda,CUDAExecutionProvider``) is used once, at its first place.
    """
    import onnxruntime as ort
    if requested is None or requested == "auto":
        return usable_providers()
    if isinstance(requested, str):
        requested = [p for p in requested.split(",") if p.strip()]
    resolved, seen = [], set()
    for entry in requested:
        name, options = (entry if isinstance(entry, tuple) else (entry, None))
        name = canonical(name)
        if name in seen:
            continue
        seen.add(name)
        if name not in ort.get_all_providers():
            raise OnnxPoseError(None, f"unknown execution provider {name!r} "
                                      f"(known: tensorrt, cuda, cpu or a full onnxruntime name)")
        if not provider_loads(name):
            usable = ", ".join(usable_providers())
            raise OnnxPoseError(None, f"execution provider {name} is not usable on this machine "
                                      f"(its libraries or device are missing); usable: {usable}")
        resolved.append((name, options) if options else name)
    if not resolved:
        raise OnnxPoseError(None, "no execution provider requested")
    return resolved
