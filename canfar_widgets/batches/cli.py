"""``canfar-widgets batch``: the batch record from a terminal or a script.

The server is whatever ``Session()`` finds (``CANFAR_URL``/``CANFAR_TOKEN``, else your
``canfar`` login); the record is the same file notebooks use.

Example:
    $ canfar-widgets batch list
    NAME   CREATED              REPLICAS  STATUS
    scan   2026-12-01 10:02:11  12        Completed 8, Failed 4
    $ canfar-widgets batch logs scan --replica 3
    $ canfar-widgets batch rerun scan
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = """\
The batches recorded on this machine (see Batch in canfar_widgets): list them, show one
batch's replicas (after a refresh from the platform), print their logs (live, or archived
once they finished), and re-run the failed replicas with the same spec.

  canfar-widgets batch list
  canfar-widgets batch show NAME
  canfar-widgets batch logs NAME [--replica N]
  canfar-widgets batch rerun NAME [--replica N ...]
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``list``, ``show``, ``logs`` and ``rerun`` on ``parser``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the recorded batches of this server, newest first")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="one batch's replicas, refreshed from the platform")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    logs = actions.add_parser("logs", help="the replicas' logs (archived once finished)")
    logs.add_argument("name")
    logs.add_argument(
        "--replica", type=int, action="append", metavar="N", help="only this replica (repeatable)"
    )
    rerun = actions.add_parser("rerun", help="re-run the failed replicas (or the given ones)")
    rerun.add_argument("name")
    rerun.add_argument(
        "--replica",
        type=int,
        action="append",
        metavar="N",
        help="re-run this replica (repeatable; default: every failed one)",
    )


def run(args: argparse.Namespace) -> int:
    """Do what ``args`` asks; 0 on success, 1 with a one-line message on stderr otherwise."""
    import httpx

    from canfar_widgets.errors import CanfarError

    try:
        return _ACTIONS[args.action](args)
    except (LookupError, ValueError, TypeError, OSError, CanfarError, httpx.HTTPError) as err:
        print(f"canfar-widgets batch: {err}", file=sys.stderr)
        return 1


def _open(name: str) -> Any:
    import warnings

    from canfar_widgets.batches import Batch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = Batch.open(name)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    return batch


def _list(args: argparse.Namespace) -> int:
    from canfar_widgets.batches import Batch

    summaries = Batch.list()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "created": s.created.isoformat(),
                        "replicas": s.replicas,
                        "counts": s.counts,
                        "destroyed": s.destroyed,
                    }
                    for s in summaries
                ],
                indent=2,
            )
        )
        return 0
    if not summaries:
        print("no batches recorded for this server")
        return 0
    rows = [
        (
            s.name,
            s.created.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            str(s.replicas),
            _counts(s.counts) + (" (destroyed)" if s.destroyed else ""),
        )
        for s in summaries
    ]
    _table(("NAME", "CREATED", "REPLICAS", "STATUS"), rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    batch = _open(args.name)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "replica": r.replica,
                        "name": r.name,
                        "id": r.id,
                        "status": r.status,
                        "attempt": r.attempt,
                        "duration": r.duration,
                        "reason": r.reason,
                        "earlier_ids": list(r.earlier_ids),
                    }
                    for r in batch.replicas
                ],
                indent=2,
            )
        )
        return 0
    print(
        f"batch {batch.name!r} on {batch.server}: {batch.total} replicas, {_counts(batch.counts)}"
    )
    rows = [
        (
            str(r.replica),
            r.name,
            r.status,
            str(r.attempt),
            r.id or "-",
            "-" if r.duration is None else f"{r.duration:.0f} s",
            r.reason,
        )
        for r in batch.replicas
    ]
    _table(("REPLICA", "NAME", "STATUS", "ATTEMPT", "ID", "DURATION", "REASON"), rows)
    errors = batch.errors()
    if errors:
        print("\nlast error lines:")
        for row in errors:
            print(f"  {row.replica}: {row.last_line or '(empty log)'}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    batch = _open(args.name)
    for replica, text in batch.logs(args.replica).items():
        print(f"── {batch.name} replica {replica} ──")
        print(text.rstrip("\n"))
    return 0


def _rerun(args: argparse.Namespace) -> int:
    batch = _open(args.name)
    launched = batch.rerun(args.replica)
    if not launched:
        print("nothing to re-run: no replica has failed")
        return 0
    for replica in launched:
        print(
            f"replica {replica.replica}: attempt {replica.attempt}, {replica.status}"
            + (f" ({replica.reason})" if replica.reason else "")
        )
    return 0


_ACTIONS = {"list": _list, "show": _show, "logs": _logs, "rerun": _rerun}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in counts.items()) or "no replicas"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    for line in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
