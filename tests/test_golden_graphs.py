"""graphs/ holds the golden decoder-only graphs; the builder must still produce them.

Regenerate after a deliberate decoder change with: ``onnxpose golden`` (from the repo root).
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from onnxpose.decoder.golden import GOLDEN_GRAPHS, canonical_bytes, golden_model

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"


@pytest.mark.parametrize("stem", sorted(GOLDEN_GRAPHS))
def test_builder_matches_committed_golden(stem):
    path = GRAPHS / f"{stem}.onnx"
    assert path.is_file(), f"{path} missing: run `onnxpose golden`"
    committed = onnx.load(str(path))
    onnx.checker.check_model(committed, full_check=True)
    assert canonical_bytes(golden_model(stem)) == canonical_bytes(committed), (
        f"the {stem} decoder graph changed; review it and run `onnxpose golden`")


def test_every_committed_golden_is_known():
    assert {p.stem for p in GRAPHS.glob("*.onnx")} == set(GOLDEN_GRAPHS)
