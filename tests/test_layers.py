"""The ground floor: the spec imports nothing of onnxpose, and the constants the graph and the
numpy references each keep for themselves (they import nothing from each other) agree."""

from __future__ import annotations

import ast
from pathlib import Path

import onnxpose
from onnxpose.reference import finite_heads as reference_finite_heads
from onnxpose.spec import HEATMAP_LIMIT

PACKAGE = Path(onnxpose.__file__).parent


def test_spec_is_the_ground_floor():
    tree = ast.parse((PACKAGE / "spec.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.startswith("onnxpose")]


def test_heatmap_limit_agrees_with_the_reference():
    assert HEATMAP_LIMIT == reference_finite_heads.HEATMAP_LIMIT
