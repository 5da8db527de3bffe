"""Run the TensorFlow-based conversions (TFLite, SavedModel, TF.js) in a disposable process.

TensorFlow's C++ code trusts the files it reads: the TFLite interpreter that tf2onnx starts to
read tensor shapes loads the flatbuffer without verifying it, so a corrupt ``.tflite`` can end the
whole Python process with a segmentation fault, and a broken SavedModel can make TensorFlow abort
or spin. onnxpose therefore never runs those conversions in the caller's process:

* a small **converter server** (``python -m onnxpose.convert.isolated``, started on the first
  conversion, one per calling process) imports TensorFlow and tf2onnx once;
* for every conversion it **forks a child** that calls tf2onnx's Python API exactly as the
  in-process code does (``onnxpose.convert.in_process.convert_in_process``), writes the ONNX model
  to a private temp directory and exits; the server never runs TensorFlow itself, so every child
  starts from the same clean, freshly imported state;
* the server reports how the child ended: a crash (signal) or a timeout
  (``ONNXPOSE_CONVERT_TIMEOUT`` seconds, default 600) becomes a one-line ``OnnxPoseError`` in
  the caller, which keeps running.

Requests are served one at a time (a lock per calling process), which also keeps tf2onnx's and
TensorFlow's global graph state out of concurrent use. The server exits when its caller does
(end of file on its stdin) or after ``ONNXPOSE_CONVERTER_IDLE`` seconds without a request
(default 300: it holds TensorFlow, about half a gigabyte); the next conversion starts a new one.
``ONNXPOSE_ISOLATE=0`` converts in-process instead (debugging; a crash in TensorFlow then ends
the caller), as do platforms without ``os.fork``.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import onnx

from onnxpose.convert.in_process import convert_in_process, preload_tensorflow
from onnxpose.errors import OnnxPoseError, first_line

DEFAULT_TIMEOUT_S = 600.0
#: an idle server exits after this many seconds (it holds TensorFlow: ~0.5 GB); the next
#: conversion starts a new one (ONNXPOSE_CONVERTER_IDLE)
DEFAULT_IDLE_S = 300.0
_IDLE_EXIT = 75
#: how long the server may take to start (import TensorFlow) before the caller gives up
STARTUP_TIMEOUT_S = 300.0
_MODEL_FILE = "model.onnx"
_RESULT_FILE = "result.json"
_SIGNAL_NAMES = {signal.SIGSEGV: "SIGSEGV", signal.SIGABRT: "SIGABRT", signal.SIGBUS: "SIGBUS",
                 signal.SIGFPE: "SIGFPE", signal.SIGILL: "SIGILL", signal.SIGKILL: "SIGKILL"}
_FORMAT_NAMES = {"tflite": "TFLite model", "savedmodel": "SavedModel", "tfjs": "TF.js model"}


def isolation_enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("ONNXPOSE_ISOLATE", "1").strip() != "0"


def _seconds(variable: str, default: float) -> float:
    value = os.environ.get(variable, "").strip()
    try:
        return float(value) if value and float(value) > 0 else default
    except ValueError:
        return default


def convert_timeout() -> float:
    return _seconds("ONNXPOSE_CONVERT_TIMEOUT", DEFAULT_TIMEOUT_S)


# --------------------------------------------------------------------------- caller side

class _Client:
    """The caller's handle on its converter server (one per process, used under ``lock``)."""

    lock = threading.Lock()
    proc: subprocess.Popen | None = None
    pid: int | None = None  # the process that started ``proc``

    @classmethod
    def server(cls) -> subprocess.Popen:
        if cls.proc is not None and (cls.pid != os.getpid() or cls.proc.poll() is not None):
            cls.stop()
        if cls.proc is None:
            env = dict(os.environ)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            env["PYTHONUNBUFFERED"] = "1"
            # the server must import this very onnxpose, wherever it was imported from
            package_root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(
                [package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
            debug = bool(os.environ.get("ONNXPOSE_DEBUG"))
            cls.proc = subprocess.Popen(
                [sys.executable, "-m", "onnxpose.convert.isolated"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=None if debug else subprocess.DEVNULL,
                env=env, close_fds=True, start_new_session=True)
            cls.pid = os.getpid()
            ready = _read_line(cls.proc, STARTUP_TIMEOUT_S)
            if ready is None or ready.get("ready") is not True:
                cls.stop()
                reason = (ready or {}).get("error", "it exited or did not answer")
                raise OnnxPoseError(None, f"cannot start the TensorFlow converter process ({reason})")
        return cls.proc

    @classmethod
    def stop(cls) -> None:
        proc, cls.proc, cls.pid = cls.proc, None, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except Exception:
                pass
        try:  # an idle server exits at end of file; a busy one is killed (its child follows)
            proc.wait(timeout=2)
        except Exception:
            proc.kill()
            proc.wait()

    abandoned: list = []  # a forked child's copies of the parent's server handle

    @classmethod
    def forget_after_fork(cls) -> None:
        """In a forked child of the caller: drop (do not share) the parent's server."""
        proc, cls.proc, cls.pid = cls.proc, None, None
        cls.lock = threading.Lock()  # it may have been held by another thread at the fork
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()  # this process's copies of the pipes only
                except Exception:
                    pass
            cls.abandoned.append(proc)  # not ours to wait for


atexit.register(_Client.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Client.forget_after_fork)


def _read_line(proc: subprocess.Popen, timeout: float) -> dict | None:
    """One JSON line from the server, or None on end of file / timeout / garbage."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _user_path(reported: str | None, absolute: str, given: str) -> str | None:
    """Map a path named in the child's error back to the spelling the caller used."""
    if reported is None:
        return None
    if reported == absolute:
        return given
    if reported.startswith(absolute + os.sep):
        return os.path.join(given, reported[len(absolute) + 1:])
    return reported


def convert_isolated(fmt: str, path: Path, opset: int, timeout: float | None = None) -> onnx.ModelProto:
    """Convert ``path`` (a TF format) in a forked child of the converter server."""
    timeout = convert_timeout() if timeout is None else float(timeout)
    given = os.fspath(path)
    absolute = os.path.abspath(given)
    what = _FORMAT_NAMES.get(fmt, fmt)
    request = {"format": fmt, "path": absolute, "opset": int(opset), "timeout": timeout,
               "idle": _seconds("ONNXPOSE_CONVERTER_IDLE", DEFAULT_IDLE_S)}
    with _Client.lock:
        for attempt in (1, 2):
            proc = _Client.server()
            work = tempfile.mkdtemp(prefix="onnxpose-convert-")
            answered = False
            try:
                try:
                    proc.stdin.write((json.dumps(dict(request, work=work)) + "\n").encode())
                    proc.stdin.flush()
                    status = _read_line(proc, timeout + 60.0)
                except OSError:
                    status = None
                if status is None:
                    if attempt == 1 and _exited_idle(proc):
                        continue  # it timed out idle just as we asked: ask a new one
                    raise OnnxPoseError(given, f"cannot convert {what}: the converter process "
                                               "stopped answering")
                answered = True
                return _result(status, work, given, absolute, what, timeout)
            finally:
                if not answered:  # interrupted or lost: the server's state is unknown
                    _Client.stop()
                shutil.rmtree(work, ignore_errors=True)
    raise AssertionError("unreachable")


def _exited_idle(proc: subprocess.Popen) -> bool:
    try:
        return proc.wait(timeout=5) == _IDLE_EXIT
    except subprocess.TimeoutExpired:
        return False


def _result(status: dict, work: str, given: str, absolute: str, what: str,
            timeout: float) -> onnx.ModelProto:
    if status.get("timeout"):
        raise OnnxPoseError(given, f"cannot convert {what}: the conversion did not finish in "
                                   f"{timeout:g} s and was stopped (ONNXPOSE_CONVERT_TIMEOUT)")
    if status.get("signal"):
        number = int(status["signal"])
        name = _SIGNAL_NAMES.get(number, f"signal {number}")
        raise OnnxPoseError(given, f"cannot convert {what}: TensorFlow crashed reading it "
                                   f"({name}); the file is corrupt or uses something TensorFlow "
                                   "cannot read")
    try:
        with open(os.path.join(work, _RESULT_FILE), encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        code = status.get("exit")
        raise OnnxPoseError(given, f"cannot convert {what}: the converter exited "
                                   f"(status {code}) without a result")
    if "error" in result:
        error = result["error"]
        raise OnnxPoseError(_user_path(error.get("path"), absolute, given), error.get("reason", "?"))
    if "exception" in result:
        text = result["exception"]
        exc = OnnxPoseError(given, f"cannot convert {what} ({text})")
        exc.__cause__ = RuntimeError("in the converter process:\n" + result.get("traceback", ""))
        raise exc
    try:
        return onnx.load_model(os.path.join(work, _MODEL_FILE))
    except Exception as exc:
        raise OnnxPoseError(given, f"cannot convert {what}: the converter's output is not "
                                   f"readable ({type(exc).__name__})") from exc


# --------------------------------------------------------------------------- server side

def _write_json(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)


def _child(request: dict) -> int:
    """In the forked child: convert, write model and result, return the exit code."""
    work = request["work"]
    try:
        model = convert_in_process(request["format"], Path(request["path"]), request["opset"])
        data = model.SerializeToString()
        with open(os.path.join(work, _MODEL_FILE), "wb") as f:
            f.write(data)
        _write_json(os.path.join(work, _RESULT_FILE), {"ok": True})
    except OnnxPoseError as exc:
        _write_json(os.path.join(work, _RESULT_FILE),
                    {"error": {"path": exc.path, "reason": exc.reason}})
    except BaseException as exc:  # noqa: BLE001 - everything becomes a one-line error
        _write_json(os.path.join(work, _RESULT_FILE),
                    {"exception": first_line(exc),
                     "traceback": traceback.format_exc()})
    return 0


def _die_with_parent() -> None:
    try:  # Linux: the child gets SIGKILL if the server dies
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _run_child(request: dict) -> dict:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            # the server's stdin/stdout are its protocol pipes: TensorFlow must not touch them
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.close(devnull)
            os.setpgid(0, 0)
            _die_with_parent()
            try:
                import resource
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps of crashes
            except Exception:
                pass
            code = _child(request)
        finally:
            os._exit(code)
    deadline = time.monotonic() + float(request.get("timeout", DEFAULT_TIMEOUT_S))
    pause = 0.002
    timed_out = False
    while True:  # wait for the child's exit without reaping it: its pid (and group) stay ours
        if _exited(pid):
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    for target in (-pid, pid):  # the child's process group: anything it started, then itself
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"timeout": True}
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def _exited(pid: int) -> bool:
    if hasattr(os, "waitid"):
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    return False  # (no waitid: the caller's timeout still applies)


def serve() -> None:
    """The converter server: import TensorFlow once, fork one child per request (stdin lines)."""
    out = sys.stdout.buffer
    try:
        preload_tensorflow()
    except BaseException as exc:  # noqa: BLE001
        out.write((json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
                   + "\n").encode())
        out.flush()
        return
    out.write(b'{"ready": true}\n')
    out.flush()
    idle, pending = DEFAULT_IDLE_S, b""
    while True:
        while b"\n" not in pending:
            readable, _, _ = select.select([0], [], [], idle)
            if not readable:
                sys.exit(_IDLE_EXIT)  # nobody asked for a while: give the memory back
            chunk = os.read(0, 65536)
            if not chunk:
                return  # the caller is gone
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        try:
            request = json.loads(line)
            idle = float(request.get("idle", idle))
            status = _run_child(request)
        except Exception as exc:  # noqa: BLE001 - a bad request must not stop the server
            status = {"exit": -1, "server_error": f"{type(exc).__name__}: {exc}"[:300]}
        out.write((json.dumps(status) + "\n").encode())
        out.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller handles Ctrl-C and closes stdin
    serve()
