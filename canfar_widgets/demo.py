"""``canfar-widgets demo``: the local platform plus JupyterLab with the example notebooks.

What it does, in order:

1. starts :class:`canfar_widgets.local.LocalPlatform` in this process (a background thread);
2. copies the example notebooks into a fresh temporary folder (so the installed package
   stays read-only and every demo starts from clean notebooks);
3. starts ``python -m jupyter lab`` on 127.0.0.1 with a random token, serving that folder,
   with ``CANFAR_URL``/``CANFAR_TOKEN`` in its environment, which its kernels inherit, so
   ``Session()`` in any notebook talks to the local platform;
4. prints (and opens) ``http://127.0.0.1:N/lab/tree/quickstart.ipynb?token=...`` and runs
   until Ctrl-C, then stops JupyterLab and the platform.

``--execute`` runs every example headless with nbclient instead (no JupyterLab, no
browser), prints one line per notebook and exits non-zero if any failed.

:class:`JupyterLab` and :func:`execute_notebook` are reused by the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DESCRIPTION",
    "JupyterLab",
    "NotebookResult",
    "add_arguments",
    "copy_examples",
    "example_notebooks",
    "examples_dir",
    "execute_notebook",
    "free_port",
    "platform_env",
    "run",
]

DESCRIPTION = """\
Start the local CANFAR platform and JupyterLab with the example notebooks.

Everything binds to 127.0.0.1. The notebooks are copied to a temporary folder; their
kernels get CANFAR_URL and CANFAR_TOKEN for the local platform, so Session() and the
widgets work without an account. The local platform really runs headless jobs as
processes on this machine. Stop with Ctrl-C.

  canfar-widgets demo                 open quickstart.ipynb in your browser
  canfar-widgets demo --no-browser    print the URL only
  canfar-widgets demo --execute       run every example headless and report
"""

# The notebook the demo opens first.
FIRST_NOTEBOOK = "quickstart.ipynb"
# How long one example may take under --execute (they finish in seconds locally).
NOTEBOOK_TIMEOUT = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None,
                        help="JupyterLab port (default: 8888, or a free port if 8888 is taken)")
    parser.add_argument("--platform-port", type=int, default=0,
                        help="local platform port (default: a free port)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; print the URL only")
    parser.add_argument("--execute", action="store_true",
                        help="run the example notebooks headless, report each, and exit")


def run(args: argparse.Namespace) -> int:
    needed = ("nbclient", "ipykernel") if args.execute else ("jupyterlab", "ipykernel")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        print(f"canfar-widgets demo needs {', '.join(missing)}: "
              "pip install 'canfar-widgets[demo]'", file=sys.stderr)
        return 2
    from canfar_widgets.local import LocalPlatform

    try:
        with _sigterm_as_ctrl_c(), LocalPlatform(port=args.platform_port) as platform:
            env = platform_env(platform.url, platform.token)
            print(f"local platform: {platform.url}", flush=True)
            if args.execute:
                return _execute_examples(env)
            return _serve_lab(env, port=args.port, open_browser=not args.no_browser)
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """While running, SIGTERM unwinds like Ctrl-C, so JupyterLab and the platform stop too."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the examples ---------------------------------------------------------------------------


def examples_dir() -> Path:
    """The example notebooks: inside the installed package, else the source tree's examples/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples", here.parent / "examples"):
        if any(candidate.glob("*.ipynb")):
            return candidate
    raise FileNotFoundError(
        "the example notebooks are missing: neither canfar_widgets/examples nor examples/ "
        "next to the package has any .ipynb file"
    )


def example_notebooks(folder: Path | None = None) -> list[Path]:
    """The examples in reading order: quickstart first, then by name (``_*`` are private)."""
    folder = folder or examples_dir()
    found = [p for p in folder.glob("*.ipynb") if not p.name.startswith("_")]
    return sorted(found, key=lambda p: (p.name != FIRST_NOTEBOOK, p.name))


def copy_examples(dest: Path) -> list[Path]:
    """Copy the example notebooks into ``dest`` (writable) and return the copies."""
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(src, dest / src.name)) for src in example_notebooks()]


def platform_env(url: str, token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the client pointed at a platform."""
    env = dict(os.environ if base is None else base)
    env.update(CANFAR_URL=url, CANFAR_TOKEN=token)
    return env


# -- JupyterLab -----------------------------------------------------------------------------


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 in a subprocess, isolated from the user's settings.

    Its configuration lives in a temporary folder: ``allow_root`` when running as root, a
    random token, no news feed and no update check (no toasts over the page), and its own
    user-settings and workspaces folders, so a test switching the theme or a demo closing
    tabs never touches ``~/.jupyter``. ``env`` is the server's environment, which its
    kernels inherit.

    Example:
        >>> with JupyterLab(root_dir, env=platform_env(url, token)) as lab:
        ...     print(lab.url("lab/tree/quickstart.ipynb"))
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root_dir = Path(root_dir)
        self.port = port or free_port()
        self.token = token or secrets.token_urlsafe(24)
        self.env = dict(os.environ if env is None else env)
        self._log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str = "lab", *, with_token: bool = True) -> str:
        """An address on the server; with the token as a query parameter by default."""
        url = self.base_url + path.lstrip("/")
        if with_token:
            url += ("&" if "?" in url else "?") + "token=" + self.token
        return url

    def start(self, timeout: float = 60.0) -> JupyterLab:
        self._tmp = tempfile.TemporaryDirectory(prefix="canfar-widgets-lab-")
        home = Path(self._tmp.name)
        config = self._write_config(home)
        log_path = self._log_path or home / "jupyterlab.log"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            f"--config={config}",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
        ]
        # Its own session: Ctrl-C in the terminal reaches only us, and we stop it with
        # SIGTERM (a SIGINT would make jupyter_server ask "Shutdown this server?").
        self._proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready(timeout, log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self, home: Path) -> Path:
        settings = home / "user-settings"
        notification = settings / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        # Belt and braces with news_url=None below: never ask about news, never check updates.
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        (home / "workspaces").mkdir()
        config = home / "jupyter_lab_config.py"
        lines = [
            "c.LabApp.news_url = None",
            "c.LabApp.check_for_updates_class = "
            "'jupyterlab.handlers.announcements.NeverCheckForUpdate'",
            f"c.LabApp.user_settings_dir = {str(settings)!r}",
            f"c.LabApp.workspaces_dir = {str(home / 'workspaces')!r}",
            "c.ServerApp.open_browser = False",
            # In this 0700 folder, not in argv (ps shows argv to every user) nor in the
            # environment (the kernels inherit it).
            f"c.IdentityProvider.token = {self.token!r}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("c.ServerApp.allow_root = True")
        config.write_text("\n".join(lines) + "\n")
        return config

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        status = self.url("api/status")
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self._proc.returncode} while starting:\n"
                    + _tail(log_path)
                )
            try:
                with urllib.request.urlopen(status, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab did not start in {timeout:.0f}s:\n" + _tail(log_path))
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # SIGTERM: jupyter_server shuts its kernels down and exits.
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else a free port chosen by the OS."""
    for port in ((preferred, 0) if preferred else (0,)):
        with socket.socket() as sock:
            # As servers bind (tornado does): a port in TIME_WAIT counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _serve_lab(env: dict[str, str], *, port: int | None, open_browser: bool) -> int:
    if port and free_port(port) != port:
        print(f"port {port} on 127.0.0.1 is in use; pick another with --port", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="canfar-widgets-demo-") as tmp:
        root = Path(tmp)
        copy_examples(root)
        lab = JupyterLab(root, port=port or free_port(8888), env=env)
        print("starting JupyterLab...", flush=True)
        with lab:
            url = lab.url(f"lab/tree/{FIRST_NOTEBOOK}")
            print(f"\nJupyterLab: {url}\nnotebooks:  {root} (a copy, deleted when the demo stops)"
                  "\n\nPress Ctrl-C to stop.", flush=True)
            if open_browser:
                webbrowser.open(url)
            try:
                while lab.running:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                print("\nstopping...", flush=True)
                return 0
            print("JupyterLab exited unexpectedly", file=sys.stderr)
            return 1


# -- headless execution ---------------------------------------------------------------------


@dataclass
class NotebookResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    notebook: Any = None  # the executed nbformat.NotebookNode


def execute_notebook(
    path: str | os.PathLike[str],
    env: Mapping[str, str],
    *,
    timeout: float = NOTEBOOK_TIMEOUT,
) -> NotebookResult:
    """Run a notebook in its folder, in a fresh ``python3`` kernel whose environment is ``env``.

    A failing cell does not raise: the result says ``ok=False``, which cell failed and how.
    The executed notebook (with outputs) is ``result.notebook``; the file is not changed.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    error = ""
    try:
        # The kernel's own stderr is only start-up chatter (errors in cells come back
        # through the protocol), so it is not mixed into the report.
        client.execute(env=dict(env), stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        error = f"cell {_failed_cell(nb)}: {exc.ename}: {exc.evalue}"
    except (CellTimeoutError, DeadKernelError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return NotebookResult(path.name, not error, time.perf_counter() - start, error, nb)


def _failed_cell(nb: Any) -> str:
    """The number (1-based, as a person counts) of the first cell with an error output."""
    for number, cell in enumerate(nb.cells, start=1):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", ())):
            return str(number)
    return "?"


def _execute_examples(env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="canfar-widgets-demo-") as tmp:
        results = []
        for path in copy_examples(Path(tmp)):
            result = execute_notebook(path, env)
            results.append(result)
            print(f"{result.name:<28} {'ok' if result.ok else 'FAILED':<7} {result.seconds:6.1f}s",
                  flush=True)
            if result.error:
                print("    " + result.error.replace("\n", "\n    "), flush=True)
    passed = sum(result.ok for result in results)
    print(f"{passed}/{len(results)} notebooks ran without errors", flush=True)
    return 0 if passed == len(results) else 1
