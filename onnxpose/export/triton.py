"""`onnxpose export triton MODEL.onnx REPO_DIR`: an NVIDIA Triton model repository.

    REPO_DIR/<name>/config.pbtxt     onnxruntime backend, inputs/outputs, batching, instances
    REPO_DIR/<name>/1/model.onnx     the model, copied

``model_spec`` reads names, dtypes and shapes from the ONNX graph (the first dimension is the
batch when it is symbolic); ``config_text`` writes the config (pure). The repository entry is
written in a temp folder beside it and renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from onnxpose.errors import OnnxPoseError, first_line

TRITON_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16",
                5: "TYPE_INT16", 6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL",
                10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32", 13: "TYPE_UINT64",
                16: "TYPE_BF16"}


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str
    dims: tuple[int, ...]       # without the batch dimension; -1 for a dynamic one


@dataclass(frozen=True)
class ModelSpec:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    batched: bool               # the first dimension of every tensor is a dynamic batch


def model_spec(model) -> ModelSpec:
    """Inputs and outputs of an onnx.ModelProto."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}

    def shape(value):
        return [d.dim_value if d.HasField("dim_value") else -1
                for d in value.type.tensor_type.shape.dim]

    values = [v for v in graph.input if v.name not in initializers], list(graph.output)
    batched = all(shape(v)[:1] == [-1] for v in values[0] + values[1])

    def tensors(group):
        out = []
        for value in group:
            elem = value.type.tensor_type.elem_type
            if elem not in TRITON_TYPES:
                raise OnnxPoseError(None, f"tensor {value.name!r} has an element type Triton's "
                                          f"onnxruntime backend does not take ({elem})")
            dims = shape(value)[1:] if batched else shape(value)
            out.append(Tensor(value.name, TRITON_TYPES[elem], tuple(dims)))
        return tuple(out)
    return ModelSpec(tensors(values[0]), tensors(values[1]), batched)


def _tensor_block(kind: str, tensor: Tensor) -> str:
    # Triton needs dims for every tensor; one that is only the batch ([N]) is [1] reshaped to []
    dims = list(tensor.dims) or [1]
    reshape = "\n    reshape { shape: [ ] }" if not tensor.dims else ""
    return (f"  {{\n    name: \"{tensor.name}\"\n    data_type: {tensor.data_type}\n"
            f"    dims: [ {', '.join(map(str, dims))} ]{reshape}\n  }}")


def config_text(name: str, spec: ModelSpec, max_batch: int = 32, instances: int = 1,
                kind: str = "KIND_GPU", tensorrt: bool = False) -> str:
    """config.pbtxt (Triton's ModelConfig in protobuf text format)."""
    lines = [f"name: \"{name}\"", "backend: \"onnxruntime\"",
             f"max_batch_size: {max_batch if spec.batched else 0}",
             "input [\n" + ",\n".join(_tensor_block("input", t) for t in spec.inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor_block("output", t) for t in spec.outputs) + "\n]"]
    if spec.batched:
        lines.append("dynamic_batching {\n  max_queue_delay_microseconds: 1000\n}")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    if tensorrt:
        params = {"precision_mode": "FP16", "max_workspace_size_bytes": str(1 << 30),
                  "trt_engine_cache_enable": "1",
                  "trt_engine_cache_path": f"/tmp/triton_trt_cache/{name}"}
        body = "\n".join(f"        parameters {{ key: \"{k}\" value: \"{v}\" }}"
                         for k, v in params.items())
        lines.append("optimization {\n  execution_accelerators {\n    gpu_execution_accelerator : [\n"
                     f"      {{\n        name : \"tensorrt\"\n{body}\n      }}\n    ]\n  }}\n}}")
    return "\n".join(lines) + "\n"


def model_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem).strip(".") or "model"
    return name


def export_triton(model_path, repo_dir, name=None, max_batch=32, instances=1, kind="KIND_GPU",
                  tensorrt=False) -> Path:
    """Write REPO_DIR/<name>/{config.pbtxt,1/model.onnx}; return the model's folder."""
    import onnx
    model_path, repo_dir = Path(model_path), Path(repo_dir)
    if not model_path.is_file():
        raise OnnxPoseError(model_path, "no such model file")
    if repo_dir.exists() and not repo_dir.is_dir():
        raise OnnxPoseError(repo_dir, "is not a directory")
    name = name or model_name(model_path)
    target = repo_dir / name
    if target.exists() or target.is_symlink():
        raise OnnxPoseError(target, "already exists (remove it, or give another --name)")
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:
        raise OnnxPoseError(model_path, f"not an ONNX model ({first_line(exc, 200)})") from exc
    try:
        text = config_text(name, model_spec(model), max_batch, instances, kind, tensorrt)
    except OnnxPoseError as exc:
        raise OnnxPoseError(model_path, exc.reason) from None
    repo_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=repo_dir, prefix=f".{name}."))
    try:
        (tmp / "1").mkdir()
        shutil.copyfile(model_path, tmp / "1" / "model.onnx")
        (tmp / "config.pbtxt").write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OnnxPoseError(target, f"cannot write ({exc.strerror or exc})") from exc
        raise
    return target
