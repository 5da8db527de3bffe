"""Builder fuzzing: mutated and truncated model files through `onnxpose build` / `inspect`.

Every case must end in exactly one ``onnxpose: error: FILE: reason`` line with exit status 2,
or in a built model that passes the ONNX checker and runs; a failed build leaves nothing at
the output path (or the previous file untouched) and no temp files. TensorFlow conversions run
in a disposable child process (onnxpose.convert.isolated), so a file that crashes TensorFlow's
C++ code costs an error line, not the caller. The bigger campaign is
``benchmarks/fuzz_build.py``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from hypothesis.errors import InvalidArgument

from onnxpose.cli import main
from onnxpose.testing import toy_models as tm

REPO = Path(__file__).resolve().parents[1]
SENTINEL = b"the previous output\n"
CASE_WATCHDOG_S = 300  # a case running longer than this is a hang: dump stacks and exit
FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])


def multi_pose_available() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("onnxpose.decoder.multi_pose", "onnxpose.reference.multi_pose"))


@contextlib.contextmanager
def captured_fd(fd: int):
    """What C/C++ code (TensorFlow, onnxruntime) writes to ``fd``; yields a getter."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        text = []
        try:
            yield lambda: "".join(text)
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def run_cli(argv):
    """main(argv) in this process; stdout and stderr as the user would see them (Python-level
    writes and anything native code writes to file descriptors 1 and 2)."""
    out, err = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(CASE_WATCHDOG_S, exit=True)
    try:
        with captured_fd(1) as native_out, captured_fd(2) as native_err, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
    return code, native_out() + out.getvalue(), native_err() + err.getvalue()


def check_outcome(command, code, out, err, output: Path | None, preexisting: bool):
    """The contract for one fuzz case; returns "built", "inspected" or the error line."""
    assert "Traceback" not in err, err
    if code == 0:
        if command == "inspect":
            assert out.strip()
            return "inspected"
        model = onnx.load(str(output))
        onnx.checker.check_model(model, full_check=True)
        from onnxpose.runtime.session import PoseSession
        result = PoseSession(output, providers=["cpu"]).predict(np.zeros((24, 32, 3), np.uint8))
        assert np.all(np.isfinite(result.keypoints))
        assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
        return "built"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("onnxpose: error: "), err
    assert code == 2, f"internal error (exit {code}): {lines[0]}"
    if output is not None:
        if preexisting:
            assert output.read_bytes() == SENTINEL, "a failed build touched the existing output"
            assert sorted(p.name for p in output.parent.iterdir()) == [output.name]
        else:
            assert not output.parent.exists() or list(output.parent.iterdir()) == [], \
                "a failed build left files behind"
    return lines[0]


def run_case(source: Path, command: str, preexisting: bool, extra=()):
    """Build or inspect ``source`` in a fresh output directory and check the contract."""
    outdir = Path(tempfile.mkdtemp(prefix="out-", dir=source.parent))
    output = outdir / "built.onnx"
    if preexisting:
        output.write_bytes(SENTINEL)
    argv = (["build", str(source), "-o", str(output), "-q", *extra] if command == "build"
            else ["inspect", str(source), "--json"])
    code, out, err = run_cli(argv)
    verdict = check_outcome(command, code, out, err, output if command == "build" else None,
                            preexisting)
    shutil.rmtree(outdir, ignore_errors=True)
    reason = verdict.split(": ", 3)[-1]
    try:  # outcome statistics: pytest --hypothesis-show-statistics
        event(f"{command}: {reason.split(' (')[0][:60]}")
    except InvalidArgument:  # not inside a @given test
        pass
    return verdict


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def toy_source(workdir) -> Path:
    path = workdir / "toy_source.onnx"
    onnx.save(tm.toy_posenet_onnx(input_hw=(33, 33), head_dtype="uint8", input_dtype="uint8"), path)
    return path


@pytest.fixture(scope="module")
def toy_built(workdir, toy_source) -> Path:
    from onnxpose.build import build_model
    path = workdir / "toy_built.onnx"
    build_model(toy_source, path)
    return path


@pytest.fixture(scope="module")
def toy_savedmodel(workdir) -> Path:
    path = workdir / "toy_savedmodel"
    tm.toy_posenet_savedmodel(path)
    return path


def fresh_case_dir(workdir: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="case-", dir=workdir))


# ------------------------------------------------------------------------------ TFLite

byte_edit = st.tuples(st.sampled_from(("flip", "flip", "set_u32", "set_u32", "delete", "insert",
                                       "zero", "truncate")),
                      st.integers(0, 2**31), st.one_of(st.sampled_from(tm.INTERESTING_U32),
                                                       st.integers(0, 2**32 - 1)),
                      st.sampled_from((1, 2, 4, 8, 16)))


def mutate_tflite(data: bytes, edits) -> bytes:
    positions = tm.tflite_structure_positions(data)  # the tables, not the weights
    for op, position, value, length in edits:
        if not data:
            break
        where = position % len(data) if op == "truncate" else positions[position % len(positions)]
        mutated = tm.mutate_bytes(data, op, where, value, length)
        if len(mutated) != len(data):  # offsets moved: any position from now on
            positions = list(range(max(len(mutated), 1)))
        data = mutated
    return data


@settings(max_examples=14, **FUZZ)
@given(which=st.sampled_from(("quant", "decoder")), edits=st.lists(byte_edit, min_size=1, max_size=3),
       command=st.sampled_from(("build", "build", "build", "inspect")), preexisting=st.booleans())
def test_mutated_tflite(workdir, quant_tflite, decoder_tflite, which, edits, command, preexisting):
    seed = quant_tflite if which == "quant" else decoder_tflite
    case = fresh_case_dir(workdir)
    source = case / "model.tflite"
    source.write_bytes(mutate_tflite(seed.read_bytes(), edits))
    extra = ("--decoder", "single") if which == "decoder" and not multi_pose_available() else ()
    run_case(source, command, preexisting, extra)
    shutil.rmtree(case)


def test_truncated_tflite_at_every_region(workdir, quant_tflite):
    """Cuts inside the header, the tables, the weights and the trailing tables.

    Losing only the last byte (padding the model never reads) may still build a correct model.
    """
    data = quant_tflite.read_bytes()
    case = fresh_case_dir(workdir)
    for keep in (0, 3, 7, 8, 64, 1024, len(data) // 2, len(data) - 4096, len(data) - 1):
        source = case / f"cut{keep}.tflite"
        source.write_bytes(data[:keep])
        verdict = run_case(source, "build", preexisting=keep % 2 == 1)
        if keep < len(data) - 1:
            assert verdict.startswith("onnxpose: error: ") and f"cut{keep}.tflite" in verdict


# A one-byte edit of the real model's flatbuffer tables that made the TFLite interpreter
# (which tf2onnx starts to read tensor shapes) crash the whole Python process with SIGSEGV.
SEGFAULT_EDIT = (476, 3)


def segfaulting_tflite(quant_tflite, directory: Path) -> Path:
    data = bytearray(quant_tflite.read_bytes())
    data[SEGFAULT_EDIT[0]] = SEGFAULT_EDIT[1]
    path = directory / "crashes_tensorflow.tflite"
    path.write_bytes(bytes(data))
    return path


def test_file_that_crashes_tensorflow_is_one_line_error_in_process(workdir, quant_tflite):
    case = fresh_case_dir(workdir)
    source = segfaulting_tflite(quant_tflite, case)
    for command in ("build", "inspect"):
        verdict = run_case(source, command, preexisting=True)
        assert "crashes_tensorflow.tflite" in verdict and "TensorFlow crashed" in verdict
    # the caller (this pytest process) is alive, and the next conversion works
    assert run_case(Path(shutil.copy(quant_tflite, case / "ok.tflite")), "build", True) == "built"


def test_file_that_crashes_tensorflow_via_the_command_line(tmp_path, quant_tflite):
    source = segfaulting_tflite(quant_tflite, tmp_path)
    output = tmp_path / "out.onnx"
    output.write_bytes(SENTINEL)
    proc = subprocess.run([sys.executable, "-m", "onnxpose", "build", str(source), "-o", str(output)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("onnxpose: error: ")]
    assert len(lines) == 1 and proc.stderr.rstrip().endswith(lines[0]) and "Traceback" not in proc.stderr
    assert "TensorFlow crashed" in lines[0]
    assert output.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crashes_tensorflow.tflite", "out.onnx"]


def test_conversion_timeout_is_one_line_error_and_the_next_build_works(tmp_path, quant_tflite,
                                                                      monkeypatch):
    monkeypatch.setenv("ONNXPOSE_CONVERT_TIMEOUT", "0.01")
    output = tmp_path / "out.onnx"
    code, _, err = run_cli(["build", str(quant_tflite), "-o", str(output), "-q"])
    assert code == 2 and "did not finish in 0.01 s" in err and not output.exists()
    monkeypatch.delenv("ONNXPOSE_CONVERT_TIMEOUT")
    code, _, err = run_cli(["build", str(quant_tflite), "-o", str(output), "-q"])
    assert code == 0, err


def test_converter_process_killed_or_idle_is_replaced(tmp_path, quant_tflite, monkeypatch):
    from onnxpose.convert import isolated
    from onnxpose.convert.convert import convert_to_onnx
    convert_to_onnx(quant_tflite)
    server = isolated._Client.proc
    assert server is not None and server.poll() is None
    server.kill()
    server.wait()
    model, fmt = convert_to_onnx(quant_tflite)
    assert fmt == "tflite" and len(model.graph.node) > 0
    assert isolated._Client.proc is not server
    # an idle server gives its memory back and is started again on demand
    monkeypatch.setenv("ONNXPOSE_CONVERTER_IDLE", "0.5")
    convert_to_onnx(quant_tflite)
    server = isolated._Client.proc
    assert server.wait(timeout=60) == isolated._IDLE_EXIT
    monkeypatch.delenv("ONNXPOSE_CONVERTER_IDLE")
    assert len(convert_to_onnx(quant_tflite)[0].graph.node) > 0
    assert isolated._Client.proc is not server and isolated._Client.proc.poll() is None


# ------------------------------------------------------------------------------ ONNX and SavedModel

proto_edit = st.tuples(st.integers(0, 2**20), st.sampled_from(tm.PROTO_MUTATIONS),
                       st.integers(0, 2**16))


def mutate_proto(data: bytes, edits, byte_damage) -> bytes:
    for leaf, op, value in edits:
        data = tm.proto_mutate(data, leaf, op, value)
    if byte_damage is not None:
        op, position, value = byte_damage
        data = tm.mutate_bytes(data, op, position, value, 3)
    return data


byte_damage = st.one_of(st.none(), st.none(), st.none(), st.none(), st.none(),
                        st.tuples(st.sampled_from(("truncate", "flip", "delete", "insert")),
                                  st.integers(0, 2**31), st.integers(0, 255)))


@settings(max_examples=40, **FUZZ)
@given(which=st.sampled_from(("source", "source", "built")),
       edits=st.lists(proto_edit, min_size=1, max_size=2), damage=byte_damage,
       command=st.sampled_from(("build", "build", "inspect")), preexisting=st.booleans())
def test_mutated_onnx(workdir, toy_source, toy_built, which, edits, damage, command, preexisting):
    seed = toy_source if which == "source" else toy_built
    case = fresh_case_dir(workdir)
    source = case / "model.onnx"
    source.write_bytes(mutate_proto(seed.read_bytes(), edits, damage))
    run_case(source, command, preexisting)
    shutil.rmtree(case)


@settings(max_examples=16, **FUZZ)
@given(edits=st.lists(proto_edit, min_size=1, max_size=2), damage=byte_damage,
       command=st.sampled_from(("build", "build", "inspect")), preexisting=st.booleans())
def test_mutated_savedmodel(workdir, toy_savedmodel, edits, damage, command, preexisting):
    case = fresh_case_dir(workdir)
    source = case / "saved_model"
    shutil.copytree(toy_savedmodel, source)
    pb = source / "saved_model.pb"
    pb.write_bytes(mutate_proto(pb.read_bytes(), edits, damage))
    run_case(source, command, preexisting)
    shutil.rmtree(case)


def test_real_built_model_mutated(workdir, built_single):
    """A few fixed edits of the real built model (1.3 MB): header, graph, metadata, tail."""
    data = built_single.read_bytes()
    fields = tm.proto_parse(data)
    leaves = len(tm.proto_leaves(fields))
    case = fresh_case_dir(workdir)
    for i, (leaf, op, value) in enumerate([(0, "varint", 19), (1, "bad_utf8", 0), (leaves // 3, "drop", 0),
                                           (leaves // 2, "varint", 5), (leaves - 1, "bytes_cut", 3),
                                           (leaves - 5, "duplicate", 0), (7, "renumber", 11)]):
        source = case / f"m{i}.onnx"
        source.write_bytes(tm.proto_mutate(data, leaf, op, value, fields=fields))
        run_case(source, "build", preexisting=bool(i % 2))
        run_case(source, "inspect", preexisting=False)


# ------------------------------------------------------------------------------ mutator sanity

def test_mutators_round_trip_and_target_structure(quant_tflite, toy_source):
    data = toy_source.read_bytes()
    assert tm.proto_serialize(tm.proto_parse(data)) == data
    tflite = quant_tflite.read_bytes()
    weights = tm.tflite_weight_ranges(tflite)
    assert sum(e - s for s, e in weights) > 0.9 * len(tflite)  # the weights are most of the file
    assert len(tm.tflite_structure_positions(tflite)) + sum(e - s for s, e in weights) == len(tflite)


def test_output_path_equal_to_source_is_refused(tmp_path, toy_source):
    source = Path(shutil.copy(toy_source, tmp_path / "model.onnx"))
    before = source.read_bytes()
    code, _, err = run_cli(["build", str(source), "-o", str(source), "-q"])
    assert code == 2 and "source model itself" in err
    assert source.read_bytes() == before
