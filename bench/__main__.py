"""Run every benchmark in one process and print one table.

Each ``bench/bench_*.py`` exposes ``run(fast: bool = False) -> list[dict]``; a row has
``benchmark``, ``subject``, ``value``, ``unit`` and optionally ``target`` and ``note``.
Figures that matter are ratios measured in the same run (ours vs the official client,
or vs the ideal), so a noisy machine moves both sides together.

    python -m bench            # full run, the figures in docs/performance.md
    python -m bench --fast     # small sizes: proves every benchmark still produces numbers
    python -m bench fanout     # only benchmarks whose module name contains "fanout"
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def machine() -> str:
    """One line: cores, memory, CPU model, Python, load average (the machine may be shared)."""
    cpu, memory = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = " load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()};{load}"
    )


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("only", nargs="*", help="run only benchmarks whose name contains this")
    parser.add_argument("--fast", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    rows: list[dict] = []
    failed: list[str] = []
    before = machine()
    for name in discover(args.only):
        started = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            produced = module.run(fast=args.fast)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        if not produced:
            print(f"{name} produced no rows", file=sys.stderr)
            failed.append(name)
        rows.extend(produced)
        print(f"# {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    print(
        f"\nmode: {'fast' if args.fast else 'full'}\nmachine at start: {before}\n"
        f"machine at end:   {machine()}"
    )
    print("| benchmark | subject | value | unit | target | note |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            "| {benchmark} | {subject} | {value} | {unit} | {target} | {note} |".format(
                benchmark=row.get("benchmark", ""),
                subject=row.get("subject", ""),
                value=format_value(row.get("value", "")),
                unit=row.get("unit", ""),
                target=row.get("target", ""),
                note=row.get("note", ""),
            )
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    if failed:
        print(f"\nbenchmarks that failed or produced nothing: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
