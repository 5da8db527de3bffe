"""Orchestration: plan providers, prepare models, time every case, compare, report."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from onnxpose.bench.cases import CASES, OrtRunner, PythonDecoder, TfliteRunner
from onnxpose.bench.options import (CPU, DEVICE_PROVIDERS, TENSORRT, TensorrtOptions,
                                    describe_providers, plan_providers, provider_list,
                                    session_options, short_name)
from onnxpose.bench.report import PYTHON, TFLITE, comparisons, write_reports
from onnxpose.bench.system import load_average, system_info
from onnxpose.bench.timing import measure_group, summarize
from onnxpose.errors import OnnxPoseError
from onnxpose.io import check_output_directory, check_output_path


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class BenchConfig:
    model: Path
    providers: str | list = "cpu,cuda,tensorrt"
    batches: tuple[int, ...] = (1, 8, 32)
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    out: Path | None = Path("bench-results")
    placement: bool = False
    image: Path | None = None
    multi: bool = True
    tflite: bool = True
    io_binding: bool = True
    trt: TensorrtOptions = field(default_factory=TensorrtOptions)
    label: str | None = None
    seed: int = 0
    block: int = 10
    progress: bool = True
    command: str | None = None
    log: Callable[[str], None] = _stderr

    def check(self) -> None:
        if self.runs < 1:
            raise OnnxPoseError(None, "--runs must be at least 1")
        if self.warmup < 0:
            raise OnnxPoseError(None, "--warmup must not be negative")
        if not self.batches or any(int(b) < 1 for b in self.batches):
            raise OnnxPoseError(None, "batch sizes must be positive integers")
        if self.threads is not None and self.threads < 1:
            raise OnnxPoseError(None, "--threads must be at least 1")
        if self.image is not None and not Path(self.image).is_file():
            raise OnnxPoseError(self.image, "no such image file")
        if self.out is not None:
            check_output_directory(self.out)
        if not Path(self.model).exists():
            raise OnnxPoseError(self.model, "no such model file or directory")

    def describe(self) -> dict:
        return {"model": str(self.model), "providers": self.providers, "batches": list(self.batches),
                "runs": self.runs, "warmup": self.warmup, "threads": self.threads,
                "placement": self.placement, "multi": self.multi, "tflite": self.tflite,
                "io_binding": self.io_binding, "tensorrt": {k: str(v) for k, v in asdict(self.trt).items()},
                "seed": self.seed, "block": self.block,
                "input": f"{self.image} (repeated to the batch size)" if self.image
                else f"random uint8 pixels (seed {self.seed})"}


class _CacheWatch:
    """Wraps a TensorRT runner: did its first run build an engine or load one from the cache?"""

    def __init__(self, runner, cache_dir: Path):
        self.runner, self.cache_dir, self._before, self._checked = runner, cache_dir, None, False
        self.case, self.details = runner.case, runner.details

    def _files(self) -> set[str]:
        return {p.name for p in self.cache_dir.glob("*") if p.is_file()}

    def create(self) -> None:
        self._before = self._files()
        self.runner.create()

    def __call__(self) -> None:
        self.runner()
        if not self._checked:
            self._checked = True
            new = sorted(self._files() - self._before)
            engines = [n for n in new if n.endswith(".engine")]
            self.runner.details["trt_engine_cache"] = (f"built {len(engines)} engine(s)" if engines
                                                       else "loaded from cache")

    def keypoints(self):
        return self.runner.keypoints()

    def close(self) -> None:
        self.runner.close()


def _case_ids(prepared) -> list[str]:
    ids = []
    if "raw" in prepared.raw:
        ids += ["raw", "raw+loop", "raw+numpy"]
    if "single" in prepared.built:
        ids.append("onnxpose-single")
    if "multi" in prepared.built:
        if "raw_all" in prepared.raw:
            ids.append("raw-all")
        ids.append("onnxpose-multi")
    return ids


def _agreement(reference, keypoints) -> dict | None:
    if reference is None or keypoints is None or np.shape(reference) != np.shape(keypoints):
        return None
    reference, keypoints = np.asarray(reference, np.float64), np.asarray(keypoints, np.float64)
    return {"vs": "onnxpose-single",
            "max_position_diff_px": float(np.abs(reference[..., :2] - keypoints[..., :2]).max()),
            "max_score_diff": float(np.abs(reference[..., 2] - keypoints[..., 2]).max())}


@contextlib.contextmanager
def _workdir(trt_cache: Path | None):
    if trt_cache is not None:
        path = trt_cache / "models"
        path.mkdir(parents=True, exist_ok=True)
        yield path  # stable model paths, so TensorRT engine caches are found again
        return
    with tempfile.TemporaryDirectory(prefix="onnxpose-bench-") as tmp:
        yield Path(tmp)


def run_bench(config: BenchConfig) -> dict:
    """Run the benchmark; returns the results (see ``write_reports`` for the files)."""
    from onnxpose.bench.models import make_inputs, prepare
    config.check()
    log = config.log
    if config.out is not None:
        Path(config.out).mkdir(parents=True, exist_ok=True)
        from onnxpose.bench.report import REPORT_FILES
        for name in REPORT_FILES:  # a link or a device there is refused now, not after the runs
            check_output_path(Path(config.out) / name)
    usable, skipped = plan_providers(config.providers)
    for skip in skipped:
        log(skip["reason"])
    if not usable:
        raise OnnxPoseError(None, "none of the requested execution providers is usable on this "
                                  "machine; nothing to benchmark")
    batches = tuple(dict.fromkeys(int(b) for b in config.batches))
    trt_cache = None
    if TENSORRT in usable:
        trt_cache = Path(config.trt.cache_dir or Path(config.out or ".") / "trt_cache")
    system = system_info(config.label, config.threads)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    with _workdir(trt_cache) as workdir:
        prepared = prepare(config.model, workdir, multi=config.multi, tflite=config.tflite, log=log)
        for skip in prepared.skipped:
            log(f"skipping {skip['case']}: {skip['reason']}")
        inputs = make_inputs(prepared.info, batches, config.image, config.seed)
        case_ids = _case_ids(prepared)
        host_provider = CPU if CPU in usable else usable[0]  # where TFLite and Python decoding run
        heads_cache: dict[int, dict] = {}

        def heads_by_batch(batch):
            if batch not in heads_cache:
                heads_cache[batch] = raw_float_heads(prepared, inputs[batch], config.threads)
            return heads_cache[batch]
        records, placement = [], None
        groups = [(p, b) for p in usable for b in batches]
        decode_ids = _decode_ids(prepared)
        per_case = 1 + config.warmup + config.runs
        total = 0
        for provider, _ in groups:
            host = provider == host_provider
            total += per_case * (len(case_ids) + (host and prepared.tflite is not None))
            total += per_case * (len([d for d in decode_ids if not d.startswith("decode:o")]) * host
                                 + len([d for d in decode_ids if d.startswith("decode:o")]))
        from tqdm import tqdm
        with tqdm(total=total, file=sys.stderr, disable=not config.progress, unit="run",
                  desc="bench", dynamic_ncols=True, leave=False) as bar:
            for provider, batch in groups:
                host = provider == host_provider
                label = f"{short_name(provider)} b{batch}"

                def tick(name, label=label):
                    bar.set_postfix_str(f"{label} {name}", refresh=False)
                    bar.update(1)

                def failed(name, reason, label=label):
                    log(f"skipping {name} on {label}: {reason}")

                runners = _runners(config, prepared, case_ids, provider, batch, inputs[batch],
                                   trt_cache, tflite=host and prepared.tflite is not None)
                measured = measure_group(runners, config.runs, config.warmup, config.block, tick,
                                         failed)
                reference = None
                if "onnxpose-single" in runners and not measured["onnxpose-single"].error:
                    reference = runners["onnxpose-single"].keypoints()
                records += _records(runners, measured, provider, batch, config, reference)
                if decode_ids:
                    runners = _decode_runners(config, prepared, decode_ids, provider, batch,
                                              heads_by_batch(batch), trt_cache, host)
                    measured = measure_group(runners, config.runs, config.warmup, config.block,
                                             tick, failed)
                    records += _records(runners, measured, provider, batch, config, reference)
        if config.placement:
            placement = _placement(config, prepared, usable, inputs[batches[0]], trt_cache, workdir, log)

    system["load_average_at_end"] = load_average()
    results = {
        "schema": "onnxpose-bench/1",
        "created": created,
        "command": config.command,
        "config": config.describe(),
        "system": system,
        "model": {**prepared.describe(),
                  "cases": [{"id": c, "label": CASES[c].label} for c in case_ids +
                            (["tflite+numpy"] if prepared.tflite is not None else []) +
                            _decode_ids(prepared)]},
        "providers": {"benchmarked": [short_name(p) for p in usable], "skipped": skipped},
        "skipped": skipped + prepared.skipped,
        "results": records,
        "comparisons": comparisons(records),
        "placement": placement,
    }
    return results


def _decode_ids(prepared) -> list[str]:
    ids = []
    if "decoder_single" in prepared.decoder_only:
        ids += ["decode:loop", "decode:numpy", "decode:onnxpose-single"]
    if "decoder_multi" in prepared.decoder_only:
        ids.append("decode:onnxpose-multi")
    return ids


def raw_float_heads(prepared, batch_input, threads) -> dict[str, np.ndarray]:
    """The float NHWC heads of the raw model (all heads if there are) for one input batch."""
    import onnxruntime as ort
    raw = prepared.raw.get("raw_all") or prepared.raw["raw"]
    session = ort.InferenceSession(str(raw.path), session_options(threads), providers=[CPU])
    values = session.run(None, {prepared.info.input_name: batch_input})
    decoder = PythonDecoder("numpy", raw.roles, raw.quantization, raw.layout,
                            prepared.info.output_stride, prepared.input_hw, prepared.coordinates)
    return decoder.float_heads(dict(zip([o.name for o in session.get_outputs()], values)))


def _decode_runners(config, prepared, decode_ids, provider, batch, heads, trt_cache, host) -> dict:
    from onnxpose.bench.cases import FunctionRunner
    runners = {}
    for case_id in decode_ids:
        spec = CASES[case_id]
        if spec.decode:
            if host:
                decoder = PythonDecoder(spec.decode, {}, {}, "NHWC", prepared.info.output_stride,
                                        prepared.input_hw, prepared.coordinates)
                runners[case_id] = FunctionRunner(
                    spec, lambda d=decoder: d.decode(heads["heatmaps"], heads["short_offsets"]))
            continue
        names = ["heatmaps", "short_offsets"] + (["displacements"] if spec.model == "decoder_multi" else [])
        feed = {name: np.ascontiguousarray(heads[name]) for name in names}
        cache_dir = trt_cache / f"decoder_batch{batch}" if trt_cache is not None else None
        providers = provider_list(provider, trt=config.trt, trt_cache_dir=cache_dir,
                                  inputs={n: tuple(feed[n].shape) for n in names})
        runner = OrtRunner(spec, prepared.decoder_only[spec.model], provider, providers,
                           session_options(config.threads), feed,
                           config.io_binding and provider in DEVICE_PROVIDERS, None)
        runner.details["providers"] = describe_providers(providers)
        runners[case_id] = _CacheWatch(runner, cache_dir) if provider == TENSORRT else runner
    return runners


def _records(runners, measured, provider, batch, config, reference) -> list[dict]:
    records = []
    for name, runner in runners.items():
        m = measured[name]
        if name == "tflite+numpy":
            where = TFLITE
        elif isinstance(runner, OrtRunner) or isinstance(runner, _CacheWatch):
            where = short_name(provider)
        else:
            where = PYTHON
        agreement = None
        if not m.error and name != "onnxpose-single":
            agreement = _agreement(reference, runner.keypoints())
        records.append({"provider": where, "batch": batch, "case": name, "label": CASES[name].label,
                        "runs": len(m.samples_ms), "warmup": config.warmup,
                        "session_create_s": m.create_s, "first_run_ms": m.first_run_ms,
                        **summarize(m.samples_ms, batch), "error": m.error,
                        "details": dict(runner.details), "agreement": agreement,
                        "samples_ms": [round(v, 4) for v in m.samples_ms]})
        runner.close()
    return records


def _runners(config, prepared, case_ids, provider, batch, batch_input, trt_cache, tflite) -> dict:
    info = prepared.info
    input_shape = tuple(batch_input.shape)
    cache_dir = trt_cache / f"batch{batch}" if trt_cache is not None else None
    providers = provider_list(provider, trt=config.trt, trt_cache_dir=cache_dir,
                              inputs={info.input_name: input_shape})
    device_io = config.io_binding and provider in DEVICE_PROVIDERS
    runners = {}
    for case_id in case_ids:
        spec = CASES[case_id]
        decoder, path = None, None
        if spec.model in prepared.raw:
            raw = prepared.raw[spec.model]
            path = raw.path
            if spec.decode:
                decoder = PythonDecoder(spec.decode, raw.roles, raw.quantization, raw.layout,
                                        info.output_stride, prepared.input_hw, prepared.coordinates)
        else:
            path = prepared.built[spec.model]
        runner = OrtRunner(spec, path, provider, providers, session_options(config.threads),
                           {info.input_name: batch_input}, device_io, decoder)
        runner.details["providers"] = describe_providers(providers)
        runners[case_id] = _CacheWatch(runner, cache_dir) if provider == TENSORRT else runner
    if tflite:
        heads = prepared.heads
        runners["tflite+numpy"] = TfliteRunner(
            CASES["tflite+numpy"], prepared.tflite, batch_input, config.threads,
            {"heatmaps": heads.heatmaps, "short_offsets": heads.short_offsets},
            info.output_stride, prepared.input_hw, prepared.coordinates)
    return runners


def _placement(config, prepared, usable, batch_input, trt_cache, workdir, log) -> list[dict]:
    from onnxpose.bench.placement import format_placement, placement_report
    reports = []
    for provider in usable:
        cache_dir = trt_cache / f"batch{batch_input.shape[0]}" if trt_cache is not None else None
        providers = provider_list(provider, trt=config.trt, trt_cache_dir=cache_dir,
                                  inputs={prepared.info.input_name: tuple(batch_input.shape)})
        for kind, case_id in (("single", "onnxpose-single"), ("multi", "onnxpose-multi")):
            if kind not in prepared.built:
                continue
            report = placement_report(case_id, prepared.built[kind], provider, providers,
                                      config.threads, batch_input, prepared.info.input_name,
                                      Path(workdir))
            log(format_placement(report))
            reports.append(report)
    return reports


__all__ = ["BenchConfig", "run_bench", "write_reports"]
