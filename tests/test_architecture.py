"""The layers stay independent (issue 13): the numpy references and the graph builders
import nothing from each other, the spec imports nothing of onnxpose, and the decoder's
own tables agree with the reference's (derived independently)."""

from __future__ import annotations

import ast
from pathlib import Path

import onnxpose
from onnxpose.decoder.multi_pose.skeleton import displacement_channels, walk_from
from onnxpose.reference import finite_heads as reference_finite_heads
from onnxpose.reference import pose_tree
from onnxpose.spec import HEATMAP_LIMIT

PACKAGE = Path(onnxpose.__file__).parent


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def modules_under(folder: str):
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_reference_and_decoder_import_nothing_from_each_other():
    for folder, other in (("reference", "onnxpose.decoder"), ("decoder", "onnxpose.reference")):
        for path in modules_under(folder):
            bad = [m for m in imported(path) if m == other or m.startswith(other + ".")]
            assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_spec_is_the_ground_floor():
    assert not [m for m in imported(PACKAGE / "spec.py") if m.startswith("onnxpose")]


def test_decoder_modules_are_short():
    for path in modules_under("decoder") + [PACKAGE / "spec.py"]:
        assert len(path.read_text().splitlines()) <= 400, path


def test_decoder_walk_and_channels_agree_with_the_reference():
    for root in range(17):
        ours = [(e.source, e.target, *displacement_channels(e)) for e in walk_from(root)]
        theirs = [(e.source, e.target, e.channel_y, e.channel_x) for e in pose_tree.walk_from(root)]
        assert ours == theirs


def test_heatmap_limit_agrees_with_the_reference():
    assert HEATMAP_LIMIT == reference_finite_heads.HEATMAP_LIMIT


def test_no_import_cycle_in_spec_decoder_and_reference():
    def module_name(path: Path) -> str:
        parts = ["onnxpose", *path.relative_to(PACKAGE).with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    paths = modules_under("decoder") + modules_under("reference") + [PACKAGE / "spec.py"]
    graph = {module_name(p): {m for m in imported(p) if m.startswith("onnxpose")} for p in paths}
    state: dict[str, int] = {}

    def visit(module: str, trail: tuple):
        if state.get(module) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(trail + (module,))}")
        if module in graph and module not in state:
            state[module] = 1
            for other in sorted(graph[module]):
                visit(other, trail + (module,))
            state[module] = 2

    for module in sorted(graph):
        visit(module, ())
