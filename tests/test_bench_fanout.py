"""The fan-out benchmark runs and reports well-formed rows (timings are never asserted)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from session_fixtures import *  # noqa: F403  (the pytest fixtures: isolated, slept, api...)

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_fanout.py"


@pytest.mark.slow
def test_bench_fanout_rows():
    spec = importlib.util.spec_from_file_location("bench_fanout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(fast=True)
    subjects = {row["subject"] for row in rows}
    assert subjects == {"ideal", "canfar_widgets.Session", "canfar_widgets.AsyncSession",
                        "canfar.Session (1.5.2)", "canfar.AsyncSession (1.5.2)"}
    for row in rows:
        assert set(row) == {"benchmark", "subject", "value", "unit", "target", "note"}
        assert row["unit"] == "s" and not math.isnan(row["value"]), row
        assert "failed" not in row["note"]
    assert len(rows) == 2 * len(subjects)
    assert module._table(rows).count("\n") == len(rows) + 1
