"""``canfar-widgets local``: run the local platform in the foreground until Ctrl-C.

Example:
    $ canfar-widgets local --port 8765 --token demo
    Local CANFAR platform (skaha v1) running.
      url:   http://127.0.0.1:8765/skaha/v1
      token: demo
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from canfar_widgets.local.faults import Faults
from canfar_widgets.local.platform import LocalPlatform, is_loopback

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = """\
Run a local CANFAR Science Platform (the skaha v1 session API) on this machine.

WARNING: it RUNS COMMANDS from session requests on this machine, as the current user: the
cmd/args of every headless session request that carries the token are executed here, with
a minimal environment, in a per-session directory. Interactive sessions (notebook, desktop, carta, firefly,
contributed) are emulated: no container runs, their connect URLs open a small page.

It binds to loopback (127.0.0.1) by default; binding anything else exposes it to the
network and prints a warning. It prints the base URL and the bearer token (a random one
unless --token is given) and runs until Ctrl-C, then kills every job it started.

Use it with any skaha v1 client, e.g.:
  Session(url="http://127.0.0.1:PORT/skaha/v1", token="TOKEN")
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``local`` options on ``parser``."""
    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default: 127.0.0.1; non-loopback is dangerous)")
    net.add_argument("--port", type=int, default=8765, help="TCP port (default: 8765; 0 = any)")
    net.add_argument("--token", default=None,
                     help="bearer token clients must send (default: a random one)")
    net.add_argument("--user", default=None, help="username the token maps to "
                     "(default: the current login name)")
    net.add_argument("--workdir", default=None,
                     help="where jobs run and logs are kept (default: a temp dir, removed on exit)")
    net.add_argument("--anonymous-401", action="store_true",
                     help="answer 401 instead of the server's 400 when no credentials are sent")
    net.add_argument("--inherit-env", action="store_true",
                     help="give jobs this process's whole environment (default: minimal)")
    net.add_argument("-v", "--verbose", action="store_true",
                     help="log requests (method, path, status, time; never tokens or queries)")

    timing = parser.add_argument_group("timing")
    timing.add_argument("--start-delay", type=float, default=1.0,
                        help="interactive Pending -> Running delay, seconds (default: 1)")
    timing.add_argument("--headless-start-delay", type=float, default=0.1,
                        help="delay before a headless command starts (default: 0.1)")
    timing.add_argument("--finished-ttl", type=float, default=None,
                        help="seconds finished sessions stay listed "
                             "(default: 3600 headless, 86400 interactive)")
    timing.add_argument("--session-expiry", type=int, default=345600,
                        help="interactive lifetime and renew extension, seconds (default: 345600)")
    timing.add_argument("--headless-expiry", type=int, default=1209600,
                        help="headless lifetime, seconds (default: 1209600)")
    timing.add_argument("--kill-grace", type=float, default=2.0,
                        help="SIGTERM -> SIGKILL grace on delete/expiry (default: 2)")

    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-sessions", type=int, default=5,
                        help="active interactive sessions per user (default: 5)")
    limits.add_argument("--allowed-host", action="append", default=None, metavar="HOST",
                        help="image registry host accepted (repeatable; "
                             "default: images.canfar.net)")

    faults = parser.add_argument_group("faults (also settable at runtime via platform.faults)")
    faults.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every API answer")
    faults.add_argument("--jitter", type=float, default=0.0,
                        help="extra random delay up to this many seconds")
    faults.add_argument("--error-rate", type=float, default=0.0,
                        help="fraction (0..1) of API requests answered 500/502/503")
    faults.add_argument("--stats-unavailable", action="store_true",
                        help="?view=stats answers 503 with Retry-After: 30")
    faults.add_argument("--slow-start", type=float, default=None, metavar="SECONDS",
                        help="override the interactive start delay (faults.start_delay)")


def build_platform(args: argparse.Namespace) -> LocalPlatform:
    """The platform ``args`` describe (not started)."""
    faults = Faults(latency=args.latency, jitter=args.jitter, error_rate=args.error_rate,
                    stats_unavailable=args.stats_unavailable, start_delay=args.slow_start)
    kwargs: dict[str, Any] = {}
    if args.allowed_host:
        kwargs["allowed_hosts"] = tuple(args.allowed_host)
    return LocalPlatform(
        host=args.host, port=args.port, token=args.token, username=args.user,
        workdir=args.workdir, start_delay=args.start_delay,
        headless_start_delay=args.headless_start_delay, finished_ttl=args.finished_ttl,
        session_expiry=args.session_expiry, headless_expiry=args.headless_expiry,
        kill_grace=args.kill_grace, max_sessions=args.max_sessions,
        anonymous_status=401 if args.anonymous_401 else 400, inherit_env=args.inherit_env,
        faults=faults, **kwargs,
    )


def run(args: argparse.Namespace) -> int:
    """Start, print how to connect, serve until Ctrl-C (or SIGTERM), stop. Exit status."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("canfar_widgets.local").setLevel(
        logging.DEBUG if args.verbose else logging.INFO)
    if not is_loopback(args.host):
        print(f"WARNING: binding to {args.host}, which is not a loopback address: anyone who "
              "can reach it and knows the token can run commands on this machine.",
              file=sys.stderr)
    try:
        platform = build_platform(args).start()
    except (OSError, ValueError) as err:
        print(f"canfar-widgets local: cannot start: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    # Explicit handlers: SIGINT may be ignored when started in the background by a shell.
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("Local CANFAR platform (skaha v1) running. It RUNS COMMANDS from session "
              f"requests on this machine as {platform.username}.")
        print(f"  url:     {platform.url}")
        print(f"  token:   {platform.token}")
        print(f"  workdir: {platform.workdir}")
        print(f"  export CANFAR_URL={platform.url} CANFAR_TOKEN={platform.token}")
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stopping: killing running jobs...", file=sys.stderr, flush=True)
        platform.stop()
    return 0
