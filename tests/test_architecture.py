"""The package's shape: a runtime install without TensorFlow, small modules, no import cycles.

* dynamic: with tensorflow, tf2onnx, onnx_graphsurgeon and matplotlib blocked (a
  ``sys.meta_path`` finder that raises ImportError for them), ``import onnxpose``,
  ``onnxpose.PoseSession`` and ``onnxpose predict --json`` work and give the same keypoints as an
  unblocked PoseSession, and ``onnxpose build`` says in one line what to install (exit 2);
* static (``ast`` over ``onnxpose/``, module- and function-level imports alike): no module over
  400 lines, no import cycle, the runtime path imports nothing from the build side or the
  tooling, the build path nothing from the tooling, ``reference/`` and ``decoder/`` nothing from
  each other.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "onnxpose"
BLOCKED = ("tensorflow", "tf2onnx", "onnx_graphsurgeon", "matplotlib")
MAX_LINES = 400
#: what the runtime path (PoseSession, ``onnxpose predict``) must never import
BUILD_SIDE = ("onnxpose.convert", "onnxpose.decoder", "onnxpose.heads", "onnxpose.bench",
              "onnxpose.testing", "onnxpose.build")
TOOLING = ("onnxpose.bench", "onnxpose.testing")
#: the runtime path's own modules (the predict command's imports are added from cli.py)
RUNTIME_ROOTS = ("onnxpose.runtime", "onnxpose.metadata", "onnxpose.keypoints", "onnxpose.errors",
                 "onnxpose.io", "onnxpose.limits", "onnxpose.version")

# -------------------------------------------------------------------------------------------
# dynamic: a Python whose import of the build and bench extras fails

_BLOCKER = f"""
import importlib.abc, sys
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked by the test (not installed)")
        return None
sys.meta_path.insert(0, _Blocker())
"""

_REPORT_MODULES = """
import json
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r}
                or m.startswith({forbidden!r}))
print("LOADED " + json.dumps(loaded), file=sys.stderr)
"""


def _run_blocked(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-c", _BLOCKER + code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _loaded(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.startswith("LOADED ")]
    assert lines, stderr
    return json.loads(lines[-1][len("LOADED "):])


def _cli(args: list[str]) -> str:
    report = _REPORT_MODULES.format(blocked=BLOCKED, forbidden=BUILD_SIDE)
    return (f"from onnxpose.cli import main\nrc = main({args!r})\n" + report + "sys.exit(rc)\n")


def test_blocker_really_blocks():
    proc = _run_blocked("import onnx_graphsurgeon\n")
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr


def test_import_onnxpose_and_pose_session_without_build_extra():
    code = ("import onnxpose\nassert onnxpose.PoseSession.__name__ == 'PoseSession'\n"
            "from onnxpose import PoseSession\nprint(onnxpose.__version__)\n"
            + _REPORT_MODULES.format(blocked=BLOCKED, forbidden=BUILD_SIDE))
    proc = _run_blocked(code)
    assert proc.returncode == 0, proc.stderr
    assert _loaded(proc.stderr) == []


def test_predict_without_build_extra_matches_pose_session(built_single, test_image):
    from onnxpose.runtime.session import PoseSession

    proc = _run_blocked(_cli(["predict", str(built_single), str(test_image), "--json"]))
    assert proc.returncode == 0, proc.stderr
    assert _loaded(proc.stderr) == [], "the predict path imported build-side or extra modules"
    blocked = json.loads(proc.stdout)
    session = PoseSession(built_single)
    expected = session.predict(test_image).to_dict()
    assert blocked["providers"] == session.providers
    assert blocked["image_size"] == expected["image_size"]
    assert len(blocked["poses"]) == len(expected["poses"]) >= 1

    def table(result):
        return np.array([[k["y"], k["x"], k["score"]] for p in result["poses"] for k in p["keypoints"]])

    assert [k["name"] for p in blocked["poses"] for k in p["keypoints"]] == \
        [k["name"] for p in expected["poses"] for k in p["keypoints"]]
    np.testing.assert_allclose(table(blocked), table(expected), rtol=0, atol=1e-5)
    np.testing.assert_allclose([p["score"] for p in blocked["poses"]],
                               [p["score"] for p in expected["poses"]], rtol=0, atol=1e-6)


@pytest.mark.parametrize("command", ["build", "inspect", "golden", "bench"])
def test_build_side_commands_without_build_extra_say_what_to_install(command, quant_tflite,
                                                                      tmp_path):
    args = {"build": ["build", str(quant_tflite), "-o", str(tmp_path / "out.onnx")],
            "inspect": ["inspect", str(quant_tflite)],
            "golden": ["golden", "--out", str(tmp_path)],
            "bench": ["bench", str(quant_tflite), "--out", str(tmp_path / "bench")]}[command]
    proc = _run_blocked(_cli(args))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("LOADED ")]
    assert len(lines) == 1, proc.stderr
    missing = "onnx_graphsurgeon" if command == "golden" else "tf2onnx"
    assert lines[0].startswith(f"onnxpose: error: onnxpose {command} needs the build extra: "
                               f"pip install 'onnxpose[build]' (missing {missing}"), lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "out.onnx").exists() and not list(tmp_path.glob("*.onnx"))


# -------------------------------------------------------------------------------------------
# static: the import graph of onnxpose/, from the source


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The onnxpose module an imported name lives in (the longest known prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, *, only_in_function: str | None = None,
             module_level_only: bool = False) -> dict[str, int]:
    """{imported onnxpose module or top-level third-party name: line} for every import statement in
    ``module`` (also inside functions), or only in the top-level function ``only_in_function``,
    or only those executed at import time (``module_level_only``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if only_in_function is not None:
        roots = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == only_in_function]
        assert roots, f"{module} has no function {only_in_function}"
        nodes = [n for root in roots for n in ast.walk(root)]
    elif module_level_only:
        nodes, stack = [], list(tree.body)
        while stack:  # statements run at import time: not inside def (nor class-level defs)
            node = stack.pop()
            nodes.append(node)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.extend(ast.iter_child_nodes(node))
    else:
        nodes = list(ast.walk(tree))
    found: dict[str, int] = {}
    for node in nodes:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
                     for alias in node.names]
        for name in names:
            key = _owner(name) if name.split(".")[0] == "onnxpose" else name.split(".")[0]
            if key and key != module:
                found.setdefault(key, node.lineno)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _inside(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def _cycles(graph: dict[str, dict]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = {m: {d: line for d, line in deps.items() if d in MODULES} for m, deps in GRAPH.items()}
    assert _cycles(graph) == [], "import cycles (function-level imports count)"


def _runtime_path() -> dict[str, str]:
    """Every onnxpose module the runtime path reaches: {module: how it is reached}.

    Roots: the runtime modules, what ``import onnxpose`` runs (its lazy ``build_model`` is the
    build's door, not the runtime's), and cli.py's imports at module level and in ``predict``.
    A reached module brings its parent packages (Python runs their ``__init__``) and everything
    it imports, also inside functions."""
    reached: dict[str, str] = {}
    todo = [(m, "root") for m in MODULES if _inside(m, RUNTIME_ROOTS)]
    todo.append(("onnxpose", "import onnxpose"))
    todo += [(m, "import onnxpose.cli") for m in _imports("onnxpose.cli", module_level_only=True)
             if m in MODULES]
    todo += [(m, "onnxpose predict") for m in _imports("onnxpose.cli", only_in_function="predict")
             if m in MODULES]
    while todo:
        module, via = todo.pop()
        if module in reached:
            continue
        reached[module] = via
        parent = module.rpartition(".")[0]
        if parent:
            todo.append((parent, f"parent of {module}"))
        deps = (_imports(module, module_level_only=True) if module == "onnxpose"  # lazy build_model
                else GRAPH[module])
        todo += [(d, module) for d in deps if d in MODULES]
    return reached


def test_runtime_path_imports_nothing_from_the_build_side():
    reached = _runtime_path()
    assert "onnxpose.runtime.session" in reached and "onnxpose.io" in reached
    bad = {m: via for m, via in reached.items() if _inside(m, BUILD_SIDE)}
    assert bad == {}, "runtime-path modules reach build-side modules ({module: imported by})"
    third_party = {(m, d) for m in reached for d in GRAPH[m] if d in BLOCKED}
    assert third_party == set(), "runtime-path modules import an extra's package"


def test_build_path_imports_no_tooling():
    """bench/ and testing/ stay off the product's path: only the CLI's bench command imports
    them (lazily), and nothing outside them imports them at all."""
    bad = {m: sorted(d for d in deps if _inside(d, TOOLING)) for m, deps in GRAPH.items()
           if not _inside(m, TOOLING) and m != "onnxpose.cli"}
    bad = {m: deps for m, deps in bad.items() if deps}
    assert bad == {}, "modules outside bench/ and testing/ that import them"
    cli_all = {d for d in GRAPH["onnxpose.cli"] if _inside(d, TOOLING)}
    cli_bench = {d for d in _imports("onnxpose.cli", only_in_function="bench") if _inside(d, TOOLING)}
    assert cli_bench and cli_all == cli_bench, "cli.py imports bench/ or testing/ outside `bench`"


def test_convert_and_isolated_do_not_import_each_other():
    assert "onnxpose.convert.convert" not in GRAPH["onnxpose.convert.isolated"]
    assert "onnxpose.convert.in_process" in GRAPH["onnxpose.convert.isolated"]


@pytest.mark.parametrize("package, other", [("onnxpose.reference", "onnxpose.decoder"),
                                            ("onnxpose.decoder", "onnxpose.reference")])
def test_reference_and_decoder_are_independent(package, other):
    bad = {m: sorted(d for d in deps if _inside(d, (other,))) for m, deps in GRAPH.items()
           if _inside(m, (package,))}
    bad = {m: deps for m, deps in bad.items() if deps}
    assert bad == {}, f"{package} modules that import {other}"


def test_one_first_line_helper():
    """errors.first_line is the one ``Type: first line`` formatter; no module defines its own."""
    copies = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        copies += [f"{module}.{n.name}" for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef) and n.name in ("_first_line", "first_line")]
    assert copies == ["onnxpose.errors.first_line"]


# -------------------------------------------------------------------------------------------
# packaging: the core install is the runtime; README, .ci/run and pyproject agree


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _names(requirements) -> set[str]:
    import re
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_core_install_is_the_runtime_and_extras_hold_the_rest():
    project = _pyproject()["project"]
    core = _names(project["dependencies"])
    assert core == {"numpy", "onnx", "onnxruntime-gpu", "onnxruntime", "pillow", "click", "tqdm"}
    extras = project["optional-dependencies"]
    assert _names(extras["build"]) == {"tf2onnx", "tensorflow-cpu", "onnx-graphsurgeon"}
    assert _names(extras["bench"]) == {"matplotlib"}
    assert extras["all"] == ["onnxpose[build,bench]"]
    assert _names(extras["video"]) == {"av"}
    assert extras["ray"] == ["ray[data]>=2.40"]
    assert extras["triton"] == ["tritonclient[grpc]>=2.40"]
    assert {"onnxpose", "pytest", "hypothesis"} <= _names(extras["test"])
    assert "onnxpose[all,video,ray,triton]" in extras["test"]
    assert "openvino" in _names(extras["test"])  # tests/test_openvino.py (pinned)


SCALE_EXTRAS = ("av", "ray", "tritonclient", "pyarrow", "pandas")


def test_runtime_path_imports_the_scale_extras_only_lazily():
    """av, ray, tritonclient and pyarrow are imported inside functions, never at import time."""
    reached = _runtime_path()
    assert "onnxpose.runtime.pipeline" in reached and "onnxpose.scale.ray_engine" in reached
    eager = {(m, d) for m in reached for d in _imports(m, module_level_only=True)
             if d in SCALE_EXTRAS}
    assert eager == set()


def test_onnxruntime_markers_pick_exactly_one_wheel_everywhere():
    from packaging.requirements import Requirement

    runtimes = [Requirement(r) for r in _pyproject()["project"]["dependencies"]
                if r.startswith("onnxruntime")]
    gpu_platforms = {("linux", "x86_64"), ("win32", "AMD64")}
    for platform in [("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"),
                     ("darwin", "x86_64"), ("win32", "AMD64"), ("win32", "ARM64")]:
        env = {"sys_platform": platform[0], "platform_machine": platform[1]}
        chosen = [r.name for r in runtimes if r.marker.evaluate(env)]
        assert chosen == (["onnxruntime-gpu"] if platform in gpu_platforms else ["onnxruntime"]), platform


def _readme_block_after(heading_text: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(heading_text)
    block = text[text.index("```bash\n", start) + len("```bash\n"):]
    return block[:block.index("```")].strip()


def test_readme_set_up_commands_install_every_extra_and_ci_runs_the_readme_test_command():
    setup = _readme_block_after("Install, build the real PoseNet")
    assert setup.startswith("python3 -m pip install -e '.[all]' && ")
    test_command = _readme_block_after("Run the tests")
    assert test_command == ("python3 -m pip install -q -e '.[all,test]' && bash scripts/install_peers.sh "
                            "&& python3 -m pytest -q")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == test_command
    assert "set -euo pipefail" in ci


def test_ci_fails_when_no_tests_ran(tmp_path):
    """pytest's exit 5 (no tests collected) must fail CI: a fake python3 answers pip with 0
    and pytest with 5."""
    fake = tmp_path / "python3"
    fake.write_text('#!/bin/sh\nif [ "$2" = "pytest" ]; then exit 5; fi\nexit 0\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 5, proc.stderr
