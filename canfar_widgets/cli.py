"""The ``canfar-widgets`` command: ``local`` (the local platform), ``demo`` and ``batch``.

Each subcommand lives with the code it drives and registers itself here by name, so this
module stays a dispatcher: ``canfar_widgets.local.cli``, ``canfar_widgets.demo`` and
``canfar_widgets.batches.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from canfar_widgets import __version__

# subcommand -> module exposing add_arguments(parser) and run(args) -> int
_SUBCOMMANDS = {
    "local": (
        "canfar_widgets.local.cli",
        "run a local CANFAR platform on loopback (runs commands!)",
    ),
    "demo": (
        "canfar_widgets.demo",
        "start the local platform and JupyterLab (or Notebook 7) with the examples",
    ),
    "batch": ("canfar_widgets.batches.cli", "recorded batches: list, show, logs, rerun"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canfar-widgets",
        description="CANFAR Science Platform sessions from a notebook.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in _SUBCOMMANDS.items():
        # No try/except: a subcommand that cannot be imported is a broken install, and its
        # ImportError (with the missing module's name) is the most useful thing to show.
        mod = import_module(module)
        child = sub.add_parser(
            name,
            help=summary,
            description=getattr(mod, "DESCRIPTION", summary),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(child)
        child.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
