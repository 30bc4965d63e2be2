"""The batch refresh benchmark runs and reports well-formed rows (timings are never asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_batches.py"


@pytest.mark.slow
def test_bench_batches_rows(clean_home):
    spec = importlib.util.spec_from_file_location("bench_batches", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(fast=True)
    for row in rows:
        assert set(row) == {"benchmark", "subject", "value", "unit", "target", "note"}
    sizes = [row["benchmark"].split()[2] for row in rows if row["unit"] == "requests"]
    assert sizes == ["N=10", "N=100", "N=1000"]
    # One list request per refresh, whatever the size: the target, measured.
    assert [row["value"] for row in rows if row["unit"] == "requests"] == [1, 1, 1]
    assert all(row["note"].startswith("met") for row in rows if row["target"])
    assert all(row["value"] > 0 for row in rows if row["unit"] == "ms")
    assert module._table(rows).count("\n") == len(rows) + 1
