"""The fan-out benchmark runs and reports well-formed rows (timings are never asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_fanout.py"
CLIENTS = {
    "canfar_widgets.Session",
    "canfar_widgets.AsyncSession",
    "canfar.Session (1.5.2)",
    "canfar.AsyncSession (1.5.2)",
}


@pytest.mark.slow
def test_bench_fanout_rows():
    spec = importlib.util.spec_from_file_location("bench_fanout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run(fast=True)
    for row in rows:
        assert set(row) == {"benchmark", "subject", "value", "unit", "target", "note"}
        assert "failed" not in row["note"] and row["value"] != "n/a", row
    servers = {row["benchmark"] for row in rows if row["benchmark"].startswith("fanout N=")}
    assert len(servers) == 2  # through the local platform, and the in-process transport
    for server in servers:
        mine = [row for row in rows if row["benchmark"] == server]
        timed = {row["subject"]: row for row in mine if row["unit"] == "s"}
        assert set(timed) == CLIENTS | {"ideal"}
        for subject in CLIENTS:
            note = timed[subject]["note"]
            assert all(f"{phase} " in note for phase in ("create", "info", "destroy")), note
            assert timed[subject]["value"] > 0
        targets = [row for row in mine if row["unit"] == "x" and row["target"]]
        assert [row["target"] for row in targets] == [">= 10", "<= 1", "<= 1.3", "<= 1.3"]
        assert all(row["note"].startswith(("met", "missed by")) for row in targets)
    assert module._table(rows).count("\n") == len(rows) + 1
