"""The ``onnxpose`` command line (click)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from onnxpose.version import __version__
from onnxpose import cli_options as opt
from onnxpose.errors import OnnxPoseError
from onnxpose.spec import MAX_OPSET, MAX_REFINE_STEPS, OPSET


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="onnxpose")
def cli():
    """Turn PoseNet models into ONNX models that output final keypoints, and run them."""


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Where to write the built .onnx model (written atomically): a new path or a "
                   "regular file; links, devices, FIFOs and directories are refused.")
@click.option("--decoder", type=click.Choice(["single", "multi"]), default=None,
              help="single: one pose per image (argmax). multi: several people. "
                   "Default: multi for a model with Coral's PosenetDecoderOp, else single.")
@click.option("--preset", type=click.Choice(["coral", "tfjs"]), default="coral", show_default=True,
              help="Multi: Coral's decoder op or TF.js decodeMultiplePoses semantics.")
@click.option("--max-poses", type=click.IntRange(1), default=None, help="Multi: poses per image (coral 10, tfjs 5).")
@click.option("--score-threshold", type=float, default=None,
              help="Multi: minimum score, in [0, 1) (coral 0.2, tfjs 0.5).")
@click.option("--nms-radius", type=click.FloatRange(0), default=None,
              help="Multi: NMS radius in input pixels, finite (coral 10, tfjs 20).")
@click.option("--candidates", type=click.IntRange(1), default=None, help="Multi: try only the K best local maxima as roots (default: all, as Coral and "
                   "TF.js; a cap is faster on crowded images but misses the poses only a later "
                   "candidate would start).")
@click.option("--refine-steps", type=click.IntRange(0, MAX_REFINE_STEPS), default=None,
              help=f"Multi: short-offset refinement steps, 0..{MAX_REFINE_STEPS} (coral 5, tfjs 2).")
@click.option("--tie-order", type=click.Choice(["scan", "heap"]), default=None,
              help="Multi: equal-score candidates in scan order (one TopK; the default) or in the "
                   "order the preset's heap pops them (heap: Coral's std::priority_queue or TF.js's "
                   "MaxHeap, exact roots, costs more; the default for a model with Coral's "
                   "PosenetDecoderOp).")
@click.option("--coral-release", type=click.Choice(["frogfish", "grouper"]), default=None,
              help="Multi, coral preset: which Coral walk of the edge leftEye -> nose. frogfish: "
                   "the posenet_decoder.so google-coral/project-posenet ships (displacement "
                   "channels 16/32; the default for a model with Coral's PosenetDecoderOp). "
                   "grouper: libcoral's later release (channels 32/48; the default otherwise).")
@click.option("--control-flow", type=click.Choice(["loop", "none"]), default=None,
              help="Multi: loop (the default: Loop/If nodes) or none: no Loop or If, for "
                   "TensorRT, CoreML and NNAPI (needs --candidates K; tie order scan only).")
@click.option("--coordinates", type=click.Choice(["stride", "grid"]), default="stride", show_default=True,
              help="Single: stride: y = row*stride + offset, score = sigmoid(logit). "
                   "grid: y = row/(h-1)*input_h + offset, score = raw heatmap value.")
@click.option("--layout", type=click.Choice(["onnxpose", "movenet"]), default="onnxpose", show_default=True,
              help="onnxpose: keypoints px + pose score(s) (+ pose_count for multi) + boxes. "
                   "movenet: single output_0 [N,1,17,3], y/x divided by input height/width; "
                   "multi output_0 [N,P,56] as MoveNet MultiPose (17 x y,x,score, then "
                   "ymin,xmin,ymax,xmax normalized and the pose score; P = 6 unless "
                   "--max-poses). Multi-only options with single, and single-only ones with "
                   "multi, are refused.")
@click.option("--input", "input_mode", type=click.Choice(["tensor", "image"]), default="tensor",
              show_default=True,
              help="tensor: the backbone's own input (the caller resizes). image: input `image` "
                   "uint8 [N,H,W,3] RGB of any size; the graph resizes it exactly as PIL's "
                   "BILINEAR resize and keypoints and boxes come out in its pixels.")
@click.option("--resize", type=click.Choice(["stretch", "letterbox"]), default="stretch",
              show_default=True,
              help="With --input image: stretch to the backbone size, or letterbox (keep the "
                   "aspect ratio, centered, padded with the backbone's zero value).")
@click.option("--box-threshold", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="A keypoint counts towards its pose's box (ymin,xmin,ymax,xmax over the "
                   "counted keypoints; score = the pose's score) when it scores at least this.")
@click.option("--keep-heads", is_flag=True, help="Also output the float heads (heatmaps, short_offsets, displacements).")
@click.option("--heatmaps", default=None, help="Output name of the heatmap head (overrides discovery).")
@click.option("--offsets", default=None, help="Output name of the short-offset head.")
@click.option("--displacements", default=None, help="Output name(s) of the displacement head(s), comma-separated (64, or fwd,bwd).")
@click.option("--output-stride", type=click.IntRange(1), default=None, help="Override the inferred output stride; it must fit the input size and the heads' grid (ceil(size / stride) = grid size).")
@click.option("--input-size", default=None,
              help="Input size HxW: fixes a dynamic one, or rebuilds a fixed-size (fully "
                   "convolutional) backbone at another size (the build says so); the heads' "
                   "grid must fit an output stride. With --input image: the backbone "
                   "resolution photos are resized to inside the model.")
@click.option("--normalization", type=click.Choice(["none", "minus_one_to_one", "zero_to_one"]), default=None,
              help="Float inputs: how pixels 0..255 map to the model input (default "
                   "minus_one_to_one); refused for uint8 inputs, which take raw pixels.")
@click.option("--opset", type=click.IntRange(OPSET, MAX_OPSET), default=OPSET, show_default=True,
              help=f"ONNX opset ({OPSET} to {MAX_OPSET}; TensorFlow sources are converted at "
                   f"{OPSET} and upgraded).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def build(model, output, decoder, preset, max_poses, score_threshold, nms_radius, candidates,
          refine_steps, tie_order, coral_release, control_flow, coordinates, layout, input_mode, resize,
          box_threshold, keep_heads, heatmaps, offsets, displacements,
          output_stride, input_size, normalization, opset, quiet):
    """Build MODEL (.tflite, SavedModel dir, TF.js model.json, .onnx) into an ONNX model
    that outputs keypoints; validated against the numpy reference before it is written."""
    from onnxpose.build import STEPS, build_model
    from onnxpose.spec import SinglePoseSettings
    from onnxpose.heads import HeadOverrides

    multi_flags = dict(max_poses=max_poses, score_threshold=score_threshold, nms_radius=nms_radius,
                       candidates=candidates, refine_steps=refine_steps, tie_order=tie_order,
                       coral_release=coral_release, control_flow=control_flow)
    preset_given = click.get_current_context().get_parameter_source("preset").name != "DEFAULT"
    overrides = HeadOverrides(heatmaps, offsets, opt.names(displacements), output_stride)

    def progress(step, message):
        if not quiet:
            click.echo(f"[{step + 1}/{len(STEPS)}] {message}", err=True)

    result = build_model(model, output, decoder=decoder, single=SinglePoseSettings(coordinates, layout),
                         multi_preset=preset if preset_given else None,
                         multi_overrides=multi_flags, keep_heads=keep_heads, overrides=overrides,
                         normalization=normalization, input_size=opt.size(input_size, "--input-size"), opset=opset,
                         input_mode=input_mode, resize=resize, box_threshold=box_threshold,
                         progress=progress)
    heads = result.heads
    click.echo(f"wrote {result.output}")
    hw = f"{heads.input.height},{heads.input.width}"
    dims = f"N,{hw},3" if heads.input.layout == "NHWC" else f"N,3,{hw}"
    click.echo(f"  input {heads.input.name} {heads.input.dtype} [{dims}] ({heads.input.layout}); "
               f"output stride {heads.output_stride}; grid {heads.grid[0]}x{heads.grid[1]}")
    if result.input_size_changed:
        (h0, w0), (h1, w1) = result.input_size_changed
        click.echo(f"  backbone input changed from {h0}x{w0} to {h1}x{w1} (--input-size; the "
                   "backbone is fully convolutional)")
    if input_mode == "image":
        click.echo(f"  model input image uint8 [N,H,W,3] (any H, W), resized in the graph "
                   f"({resize}) to the backbone's {heads.input.height}x{heads.input.width}")
    click.echo(f"  decoder {json.dumps(result.decoder)}")
    click.echo(f"  outputs {', '.join(result.outputs)}")
    v = result.validation
    click.echo(f"  validated: batch {v.batch}, {v.poses_compared} poses compared, max |Δ| vs numpy "
               f"reference {v.max_position_error_px:.2g} px, {v.max_score_error:.2g} in score")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (tensors as {name, shape, dtype}; a dynamic dimension is null).")
@click.option("--input-size", default=None,
              help="Inspect at input size HxW (for models with a dynamic one).")
def inspect(model, as_json, input_size):
    """Print MODEL's inputs, heads, output stride, quantization and op counts."""
    from onnxpose.inspect import format_report, inspect_model
    report = inspect_model(model, input_size=opt.size(input_size, "--input-size"))
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="One IMAGE: write it with the skeleton(s) drawn; the format follows the "
                   "extension (.png .jpg .jpeg .bmp .webp .tif .tiff). Many inputs: a directory "
                   "for one overlay per image and an overlay MP4 per video.")
@click.option("--json", "as_json", is_flag=True,
              help="One IMAGE: print the poses as JSON (keypoints below --min-score left out; see README).")
@click.option("--providers", default="auto", show_default=True,
              help="auto (TensorRT > CUDA > CPU, those that load) or a list like cuda,cpu.")
@click.option("--min-score", type=float, default=0.2, show_default=True,
              help="Keypoints below this score (in [0, 1]) are not drawn, printed or in the JSON.")
@click.option("--jsonl", type=click.Path(path_type=Path), default=None,
              help="Many inputs: one JSON record per image or video frame (schema in README).")
@click.option("--parquet", type=click.Path(path_type=Path), default=None,
              help="Many inputs: the same records as one Parquet file (needs pyarrow: the ray extra).")
@click.option("--batch", type=click.IntRange(1, 1024), default=None, help="Many inputs: images per session run (default 8).")
@click.option("--every", type=click.IntRange(1), default=None, help="Video: keep every N-th frame (default 1).")
@click.option("--resume", is_flag=True, help="Skip the images and frames already in --jsonl and append the rest.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
              help="local (default): this machine, a thread pool ahead of one session. ray: Ray Data "
                   "(ray.init() here, or the cluster at RAY_ADDRESS; the ray extra).")
@click.option("--num-actors", type=click.IntRange(1), default=None, help="Ray: actors, each with one onnxruntime session (default 1).")
@click.option("--gpus-per-actor", type=click.FloatRange(0), default=None, help="Ray: GPUs per actor (default 0).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Local: reading threads (default min(4, CPUs)).")
@click.option("-q", "--quiet", is_flag=True, help="Many inputs: no progress bar.")
def predict(model, inputs, out, as_json, providers, min_score, jsonl, parquet, batch, every, resume,
            engine, num_actors, gpus_per_actor, threads, quiet):
    """Run a built MODEL on IMAGE, or on many INPUTs (images, folders, globs, videos: see
    --jsonl, --out, --batch); print keypoints (y, x in the image's pixels) and optionally
    draw them."""
    from onnxpose.cli_predict import is_many, predict_many
    many = dict(jsonl=jsonl, parquet=parquet, batch=batch, every=every, resume=resume,
                engine=engine, num_actors=num_actors, gpus_per_actor=gpus_per_actor,
                threads=threads, quiet=quiet)
    if is_many(inputs, many):
        return predict_many(model, inputs, out, as_json, providers, opt.min_score(min_score), **many)
    image = Path(inputs[0])
    from onnxpose.io import atomic_output, check_output_path
    from onnxpose.runtime.draw import draw_poses
    from onnxpose.runtime.images import load_image
    from onnxpose.runtime.session import PoseSession

    opt.min_score(min_score)
    if out is not None:
        check_output_path(out)
        fmt = opt.image_format(out)
    session = PoseSession(model, providers=providers)
    picture = load_image(image)
    result = session.predict(picture)
    if out is not None:  # the file first: a closed stdout (| head) must not lose it
        with atomic_output(out) as tmp:
            draw_poses(picture, result, min_score).save(tmp, format=fmt)
        click.echo(f"wrote {out}", err=True)
    if as_json:
        payload = {"model": str(model), "image": str(image), "providers": session.providers,
                   "min_score": min_score, **result.to_dict(min_score)}
        click.echo(json.dumps(payload, indent=2, allow_nan=False))
    else:
        click.echo(f"{image}: {len(result.scores)} pose(s) on {session.providers[0]}")
        for index, pose in enumerate(result.poses):
            click.echo(f"pose {index}: score {pose.score:.3f}")
            for k in pose.keypoints:
                if k.score >= min_score:
                    click.echo(f"  {k.name:<14} y {k.y:8.1f}  x {k.x:8.1f}  score {k.score:.3f}")


@cli.command("serve-web")
@click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
def serve_web(model, port):
    """Serve the web page (web/) with MODEL and onnxruntime-web on 127.0.0.1 only."""
    from onnxpose.web_server import make_server
    server = make_server(model, port)
    host, port = server.server_address[:2]
    click.echo(f"serving {model} at http://{host}:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.group()
def export():
    """Export a built model for a serving system."""


@export.command("triton")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("repo_dir", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Model name in the repository (default: MODEL's file name).")
@click.option("--max-batch", type=click.IntRange(1), default=32, show_default=True, help="max_batch_size.")
@click.option("--instances", type=click.IntRange(1), default=1, show_default=True, help="Model instances (instance_group count).")
@click.option("--cpu", is_flag=True, help="Instances on the CPU (KIND_CPU) instead of the GPU.")
@click.option("--tensorrt", is_flag=True, help="The TensorRT accelerator (FP16, engine cache).")
def export_triton_command(model, repo_dir, name, max_batch, instances, cpu, tensorrt):
    """Write an NVIDIA Triton model repository entry REPO_DIR/<name>/ for MODEL.onnx."""
    from onnxpose.export.triton import export_triton
    if cpu and tensorrt:
        raise OnnxPoseError(None, "--tensorrt needs GPU instances (leave out --cpu)")
    target = export_triton(model, repo_dir, name, max_batch, instances,
                           "KIND_CPU" if cpu else "KIND_GPU", tensorrt)
    click.echo(f"wrote {target / 'config.pbtxt'} and {target / '1' / 'model.onnx'}")


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("graphs"), show_default=True,
              help="Directory for the golden decoder-only graphs.")
def golden(out):
    """Regenerate the golden decoder-only graphs (graphs/*.onnx) checked by the tests."""
    from onnxpose.errors import require_extra
    require_extra("build", ("onnx_graphsurgeon",), "onnxpose golden")
    from onnxpose.decoder.golden import write_goldens
    from onnxpose.io import check_output_directory
    check_output_directory(out, must_exist=True)
    for path in write_goldens(out):
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--providers", default="cpu,cuda,tensorrt", show_default=True,
              help="Execution providers to benchmark (or all); one that does not load here is skipped "
                   "with a one-line note, never replaced.")
@click.option("--batch", "batches", default="1,8,32", show_default=True,
              help="Batch sizes, comma-separated positive integers.")
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True,
              help="Timed runs per case.")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True,
              help="Untimed warm-up runs per case.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads (intra_op_num_threads; TFLite num_threads). Default: onnxruntime's.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results"),
              show_default=True, help="Directory for JSON, CSV, Markdown and PNG results (created "
                                      "if new; a file or a link there is refused).")
@click.option("--placement", is_flag=True,
              help="Also report which provider runs every decoder node (placement.json).")
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Input image (repeated to the batch size). Default: seeded random pixels.")
@click.option("--label", default=None, help="Machine label recorded with the results (e.g. cpu-2core).")
@click.option("--multi/--no-multi", default=True, show_default=True,
              help="Include the multi-pose model (when this onnxpose has the multi-pose decoder).")
@click.option("--tflite/--no-tflite", default=True, show_default=True,
              help="Include the source TFLite model in the TFLite interpreter.")
@click.option("--io-binding/--no-io-binding", default=True, show_default=True,
              help="CUDA/TensorRT: keep inputs and outputs on the device with IO binding.")
@click.option("--trt-fp16/--no-trt-fp16", default=True, show_default=True, help="TensorRT: fp16 kernels.")
@click.option("--trt-cache", type=click.Path(path_type=Path), default=None,
              help="TensorRT engine cache directory (default OUT/trt_cache): engines are built once.")
@click.option("--trt-workspace", type=click.FloatRange(0.0625), default=2.0, show_default=True,
              help="TensorRT workspace size in GiB.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def bench(model, providers, batches, runs, warmup, threads, out, placement, image, label, multi,
          tflite, io_binding, trt_fp16, trt_cache, trt_workspace, quiet):
    """Benchmark MODEL (a source model or a built onnxpose .onnx) on every usable provider:
    raw model + Python loop / numpy decoding, onnxpose models decoding in-graph, and the
    source TFLite model; latency percentiles, throughput, first-run cost, decode overhead."""
    from onnxpose.errors import BUILD_EXTRA_MODULES, require_extra
    require_extra("build", BUILD_EXTRA_MODULES, "onnxpose bench")
    require_extra("bench", ("matplotlib",), "onnxpose bench")
    from onnxpose.bench import BenchConfig, run_bench, write_reports
    from onnxpose.bench.options import TensorrtOptions

    config = BenchConfig(model=model, providers=providers, batches=opt.batches(batches), runs=runs,
                         warmup=warmup, threads=threads, out=out, placement=placement, image=image,
                         multi=multi, tflite=tflite, io_binding=io_binding,
                         trt=TensorrtOptions(trt_fp16, trt_cache, trt_workspace), label=label,
                         progress=not quiet,
                         command=opt.bench_command(click.get_current_context()),
                         log=lambda message: click.echo(message, err=True))
    results = run_bench(config)
    for path in write_reports(results, out):
        click.echo(f"wrote {path}", err=True)
    from onnxpose.bench.report import markdown
    click.echo(markdown(results), nl=False)


def main(argv=None) -> int:
    """Entry point: one-line errors, exit 2 for user errors, 1 for internal ones."""
    debug = bool(os.environ.get("ONNXPOSE_DEBUG"))
    try:
        cli.main(args=argv, prog_name="onnxpose", standalone_mode=False)
        return 0
    except OnnxPoseError as exc:
        click.echo(f"onnxpose: error: {exc}", err=True)
        if debug:
            raise
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # one line, like every other error
        command = exc.ctx.command_path if exc.ctx is not None else "onnxpose"
        click.echo(f"onnxpose: error: {exc.format_message()} (see {command} --help)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:  # stdout closed early (| head): quiet, like other Unix tools
        _silence_stdout()
        return 141
    except SystemExit as exc:  # click turns a closed stdout (EPIPE) into exit(1)
        if isinstance(exc.__context__, BrokenPipeError):
            _silence_stdout()
            return 141
        raise
    except click.exceptions.Abort:
        click.echo("onnxpose: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("onnxpose: interrupted", err=True)
        return 130
    except Exception as exc:  # never a traceback for the user
        if debug:
            raise
        text = " ".join(str(exc).split())[:300]
        click.echo(f"onnxpose: error: internal error: {type(exc).__name__}: {text} "
                   "(set ONNXPOSE_DEBUG=1 for a traceback)", err=True)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
