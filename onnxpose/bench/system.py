"""What the benchmark ran on: machine, CPU, GPU, library versions."""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import platform
import shutil
import subprocess
import sys


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    return None


def gpus() -> list[dict]:
    """GPUs reported by nvidia-smi (empty where there is none or no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        text = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            found.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return found


def tensorrt_version() -> str | None:
    """The TensorRT Python package's version, else the libnvinfer found, else None."""
    with contextlib.suppress(Exception):
        import tensorrt  # noqa: F401  (optional)
        return str(tensorrt.__version__)
    library = ctypes.util.find_library("nvinfer")
    return f"library {library}" if library else None


def _version(module: str) -> str | None:
    with contextlib.suppress(Exception):
        from importlib.metadata import version
        return version(module)
    return None


def system_info(label: str | None = None, threads: int | None = None) -> dict:
    import numpy as np
    import onnxruntime as ort

    from onnxpose import __version__
    from onnxpose.runtime.providers import usable_providers
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "label": label,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "load_average_at_start": [round(v, 2) for v in load] if load else None,
        "threads": threads,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_package": "onnxruntime-gpu" if _version("onnxruntime-gpu") else "onnxruntime",
        "onnxruntime_available_providers": ort.get_available_providers(),
        "onnxruntime_usable_providers": usable_providers(),
        "tensorrt": tensorrt_version(),
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "onnxpose": __version__,
    }


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
