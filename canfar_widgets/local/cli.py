"""``canfar-widgets local``: run the local platform in the foreground until Ctrl-C.

Example:
    $ CANFAR_LOCAL_TOKEN=demo canfar-widgets local --port 8765 --arc ~/arc
    Local CANFAR platform (skaha v1) running.
      url:   http://127.0.0.1:8765/skaha/v1
      token: (from CANFAR_LOCAL_TOKEN)
      arc:   /home/alice/arc  (jobs see it at /arc)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from canfar_widgets.local.faults import Faults
from canfar_widgets.local.platform import LocalPlatform, is_loopback

__all__ = ["DESCRIPTION", "TOKEN_ENV", "add_arguments", "run"]

TOKEN_ENV = "CANFAR_LOCAL_TOKEN"
TOKEN_WARNING = (
    "WARNING: --token is readable by every user of this machine in the process "
    f"list; set {TOKEN_ENV} or use --token-file instead."
)

DESCRIPTION = """\
Run a local CANFAR Science Platform (the skaha v1 session API) on this machine.

WARNING: it RUNS COMMANDS from session requests on this machine, as the current user: the
cmd/args of every headless session request that carries the token are executed here, with
a minimal environment, in the user's home on the storage root (/arc/home/USER; jobs see
the storage root at /arc through bubblewrap where it is available). Interactive sessions
(notebook, desktop, carta, firefly, contributed) are emulated: no container runs, their
connect URLs open a small page.

It binds to loopback (127.0.0.1) by default; binding anything else exposes it to the
network and prints a warning. It prints the base URL and the bearer token (a random one
unless CANFAR_LOCAL_TOKEN, --token-file or --token gives it; --token is visible to every
local user in the process list) and runs until Ctrl-C (or SIGTERM, SIGHUP), then kills
every job it started. With --workdir, a platform restarted on the same folder lists the
earlier sessions.

Use it with any skaha v1 client, e.g.:
  Session(url="http://127.0.0.1:PORT/skaha/v1", token="TOKEN")
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``local`` options on ``parser``."""
    net = parser.add_argument_group("server")
    net.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; non-loopback is dangerous)",
    )
    net.add_argument("--port", type=int, default=8765, help="TCP port (default: 8765; 0 = any)")
    net.add_argument(
        "--token",
        default=None,
        help=f"bearer token clients must send (default: ${TOKEN_ENV}, else "
        "a random one). Visible in the process list: prefer "
        f"{TOKEN_ENV} or --token-file",
    )
    net.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="read the bearer token from FILE (its first line)",
    )
    net.add_argument(
        "--user", default=None, help="username the token maps to (default: the current login name)"
    )
    net.add_argument(
        "--workdir",
        default=None,
        help="the platform's state: sessions, logs (default: a temp dir, removed "
        "on exit); restarting on the same folder lists earlier sessions",
    )
    net.add_argument(
        "--anonymous-401",
        action="store_true",
        help="answer 401 instead of the server's 400 when no credentials are sent",
    )
    net.add_argument(
        "--inherit-env",
        action="store_true",
        help="give jobs this process's whole environment (default: minimal)",
    )
    net.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log requests (method, path, status, time; never tokens or queries)",
    )

    jobs = parser.add_argument_group("jobs")
    jobs.add_argument(
        "--arc",
        default=None,
        metavar="DIR",
        help="storage root jobs see at /arc, holding home/USER and "
        "projects/NAME (default: under the user state directory)",
    )
    jobs.add_argument(
        "--no-arc-mount",
        action="store_true",
        help="never mount the storage root at /arc (jobs get HOME under it)",
    )
    jobs.add_argument(
        "--image",
        action="append",
        default=None,
        metavar="IMAGE=PREFIX",
        help="run jobs of IMAGE with the environment at PREFIX (a venv or conda "
        "prefix: PREFIX/bin first on PATH); repeatable",
    )
    jobs.add_argument(
        "--cores",
        type=float,
        default=None,
        help="CPU capacity jobs are scheduled on (default: this host's)",
    )
    jobs.add_argument(
        "--ram",
        type=float,
        default=None,
        metavar="GIB",
        help="memory capacity in GiB (default: this host's)",
    )
    net.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="close idle and half-open connections after this long (default: 30)",
    )

    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--start-delay",
        type=float,
        default=1.0,
        help="interactive Pending -> Running delay, seconds (default: 1)",
    )
    timing.add_argument(
        "--headless-start-delay",
        type=float,
        default=0.1,
        help="delay before a headless command starts (default: 0.1)",
    )
    timing.add_argument(
        "--finished-ttl",
        type=float,
        default=None,
        help="seconds finished sessions stay listed (default: 3600 headless, 86400 interactive)",
    )
    timing.add_argument(
        "--session-expiry",
        type=int,
        default=345600,
        help="interactive lifetime and renew extension, seconds (default: 345600)",
    )
    timing.add_argument(
        "--headless-expiry",
        type=int,
        default=1209600,
        help="headless lifetime, seconds (default: 1209600)",
    )
    timing.add_argument(
        "--kill-grace",
        type=float,
        default=2.0,
        help="SIGTERM -> SIGKILL grace on delete/expiry (default: 2)",
    )

    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-sessions",
        type=int,
        default=5,
        help="active interactive sessions per user (default: 5)",
    )
    limits.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="HOST",
        help="image registry host accepted (repeatable; default: images.canfar.net)",
    )

    faults = parser.add_argument_group("faults (also settable at runtime via platform.faults)")
    faults.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API answer"
    )
    faults.add_argument(
        "--jitter", type=float, default=0.0, help="extra random delay up to this many seconds"
    )
    faults.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction (0..1) of API requests answered 500/502/503",
    )
    faults.add_argument(
        "--stats-unavailable",
        action="store_true",
        help="?view=stats answers 503 with Retry-After: 30",
    )
    faults.add_argument(
        "--slow-start",
        type=float,
        default=None,
        metavar="SECONDS",
        help="override the interactive start delay (faults.start_delay)",
    )
    faults.add_argument(
        "--pull-failure",
        action="append",
        default=None,
        metavar="IMAGE",
        help="pulling IMAGE fails (ErrImagePull); '*' = every image; repeatable",
    )
    faults.add_argument(
        "--unschedulable",
        action="store_true",
        help="the node is cordoned: headless jobs stay Pending (FailedScheduling)",
    )


def image_environments(values: list[str] | None) -> dict[str, str]:
    """``--image IMAGE=PREFIX`` values as a mapping; a malformed one raises ``ValueError``."""
    out: dict[str, str] = {}
    for value in values or []:
        image, sep, prefix = value.partition("=")
        if not sep or not image or not prefix:
            raise ValueError(
                f"--image {value!r}: expected IMAGE=PREFIX, e.g. "
                "images.canfar.net/skaha/astroml:latest=/opt/conda/envs/astro"
            )
        out[image] = prefix
    return out


def read_token(args: argparse.Namespace, environ: Any = os.environ) -> str | None:
    """The token from ``--token-file``, ``--token`` or ``$CANFAR_LOCAL_TOKEN`` (in that
    order), or None for a random one. A token file that is empty raises ``ValueError``."""
    if getattr(args, "token_file", None):
        text = Path(args.token_file).expanduser().read_text(encoding="utf-8")
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ValueError(f"--token-file {args.token_file}: the file is empty")
        return token
    if args.token:
        return str(args.token)
    return environ.get(TOKEN_ENV) or None


def build_platform(args: argparse.Namespace) -> LocalPlatform:
    """The platform ``args`` describe (not started)."""
    faults = Faults(
        latency=args.latency,
        jitter=args.jitter,
        error_rate=args.error_rate,
        stats_unavailable=args.stats_unavailable,
        start_delay=args.slow_start,
        pull_failures=tuple(getattr(args, "pull_failure", None) or ()),
        unschedulable=bool(getattr(args, "unschedulable", False)),
    )
    kwargs: dict[str, Any] = {}
    if args.allowed_host:
        kwargs["allowed_hosts"] = tuple(args.allowed_host)
    return LocalPlatform(
        host=args.host,
        port=args.port,
        token=read_token(args),
        username=args.user,
        workdir=args.workdir,
        arc=args.arc,
        mount_arc=not args.no_arc_mount,
        cores=args.cores,
        ram=args.ram,
        image_environments=image_environments(args.image),
        idle_timeout=args.idle_timeout,
        start_delay=args.start_delay,
        headless_start_delay=args.headless_start_delay,
        finished_ttl=args.finished_ttl,
        session_expiry=args.session_expiry,
        headless_expiry=args.headless_expiry,
        kill_grace=args.kill_grace,
        max_sessions=args.max_sessions,
        anonymous_status=401 if args.anonymous_401 else 400,
        inherit_env=args.inherit_env,
        faults=faults,
        **kwargs,
    )


def run(args: argparse.Namespace) -> int:
    """Start, print how to connect, serve until Ctrl-C (or SIGTERM), stop. Exit status."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logging.getLogger("canfar_widgets.local").setLevel(
        logging.DEBUG if args.verbose else logging.INFO
    )
    if not is_loopback(args.host):
        print(
            f"WARNING: binding to {args.host}, which is not a loopback address: anyone who "
            "can reach it and knows the token can run commands on this machine.",
            file=sys.stderr,
        )
    if args.token and not getattr(args, "token_file", None):
        print(TOKEN_WARNING, file=sys.stderr)
    try:
        platform = build_platform(args).start()
    except (OSError, ValueError) as err:
        print(f"canfar-widgets local: cannot start: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    # Explicit handlers: SIGINT may be ignored when started in the background by a shell, and
    # a closed terminal (SIGHUP) must stop the jobs as Ctrl-C does.
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        given = args.token or getattr(args, "token_file", None) or os.environ.get(TOKEN_ENV)
        shown = (
            platform.token
            if args.token or not given
            else (
                "(from --token-file)"
                if getattr(args, "token_file", None)
                else f"(from {TOKEN_ENV})"
            )
        )
        storage = platform.storage
        where = (
            "jobs see it at /arc"
            if storage is not None and storage.mounted
            else f"NOT mounted at /arc: {storage.note if storage else '?'}; jobs get HOME under it"
        )
        print(
            "Local CANFAR platform (skaha v1) running. It RUNS COMMANDS from session "
            f"requests on this machine as {platform.username}."
        )
        print(f"  url:     {platform.url}")
        print(f"  token:   {shown}")
        print(f"  arc:     {platform.arc}  ({where})")
        print(f"  workdir: {platform.workdir}")
        print(f"  capacity: {platform.settings.cores:g} cores, {platform.settings.ram:.1f} GiB")
        token_text = platform.token if shown == platform.token else f"${TOKEN_ENV}"
        if shown == platform.token or not getattr(args, "token_file", None):
            print(f"  export CANFAR_URL={platform.url} CANFAR_TOKEN={token_text}")
        else:
            print(f"  export CANFAR_URL={platform.url} CANFAR_TOKEN=$(cat {args.token_file})")
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stopping: killing running jobs...", file=sys.stderr, flush=True)
        platform.stop()
    return 0
