"""``canfar-widgets demo``: the local platform plus JupyterLab (or Notebook 7) on a folder.

What it does, in order:

1. starts :class:`canfar_widgets.local.LocalPlatform` in this process (a background thread);
2. picks the folder to serve: by default a fresh temporary copy of the example notebooks
   (so the installed package stays read-only and every demo starts from clean notebooks);
   ``demo DIR`` serves the user's own folder instead, untouched unless ``--examples``
   asks for the examples in its ``canfar-widgets-examples/`` subfolder;
3. starts ``python -m jupyter lab`` (``--notebook``: ``jupyter notebook``, Notebook 7) on
   127.0.0.1 with a random token, serving that folder, with ``CANFAR_URL``/``CANFAR_TOKEN``
   in its environment, which its kernels inherit, so ``Session()`` in any notebook talks to
   the local platform;
4. prints (and opens) the address of ``quickstart.ipynb`` (or of the folder) and runs until
   Ctrl-C, then stops the server and the platform. The temporary copy is deleted only if
   nothing in it was added or changed; otherwise it is kept (and its path printed), or,
   when a terminal is attached, the person is asked first.

``--execute`` runs every example headless with nbclient instead (no server, no browser),
prints one line per notebook and exits non-zero if any failed.

:class:`JupyterLab`, :class:`JupyterNotebook` and :func:`execute_notebook` are reused by
the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
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
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

__all__ = [
    "DESCRIPTION",
    "EXAMPLES_SUBFOLDER",
    "JupyterLab",
    "JupyterNotebook",
    "JupyterServer",
    "NotebookResult",
    "add_arguments",
    "changed_files",
    "copy_examples",
    "example_notebooks",
    "examples_dir",
    "execute_notebook",
    "free_port",
    "platform_env",
    "run",
    "snapshot",
]

_Server = TypeVar("_Server", bound="JupyterServer")

DESCRIPTION = """\
Start the local CANFAR platform and JupyterLab (or Notebook 7) with the example notebooks.

Everything binds to 127.0.0.1. Kernels get CANFAR_URL and CANFAR_TOKEN for the local
platform, so Session() and the widgets work without an account. The local platform really
runs headless jobs as processes on this machine. Stop with Ctrl-C.

Without DIR the examples are copied to a temporary folder. When the demo stops, that folder
is deleted only if you added or changed nothing in it; otherwise it is kept and its path
printed (in a terminal you are asked first). With DIR your own folder is served as it is;
nothing in it is deleted or overwritten.

  canfar-widgets demo                     open quickstart.ipynb in your browser
  canfar-widgets demo ~/work              serve your folder ~/work instead
  canfar-widgets demo ~/work --examples   ... with the examples in ~/work/canfar-widgets-examples/
  canfar-widgets demo --notebook          use Notebook 7 instead of JupyterLab
  canfar-widgets demo --no-browser        print the URL only
  canfar-widgets demo --execute           run every example headless and report
"""

# The notebook the demo opens first.
FIRST_NOTEBOOK = "quickstart.ipynb"
# Where ``demo DIR --examples`` puts the examples: a subfolder, so no file of DIR is touched.
EXAMPLES_SUBFOLDER = "canfar-widgets-examples"
# How long one example may take under --execute (they finish in seconds locally).
NOTEBOOK_TIMEOUT = 120.0
# Copies of the person's own files that Jupyter writes by itself: not work to keep.
_NOT_WORK = frozenset({".ipynb_checkpoints", ".virtual_documents", "__pycache__"})
# The digest of a file that could not be read: it always counts as changed.
_UNREADABLE = "unreadable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        nargs="?",
        metavar="DIR",
        default=None,
        help="serve this folder of yours instead of a temporary copy of the "
        "examples (nothing in it is deleted or overwritten)",
    )
    parser.add_argument(
        "--notebook-dir",
        dest="notebook_dir",
        metavar="DIR",
        default=None,
        help="the same as DIR, spelt as Jupyter spells it",
    )
    parser.add_argument(
        "--examples",
        action="store_true",
        help=f"with DIR: copy the examples into DIR/{EXAMPLES_SUBFOLDER}/ "
        "(existing files there are left as they are)",
    )
    parser.add_argument(
        "--notebook", action="store_true", help="start Notebook 7 instead of JupyterLab"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="the server's port (default: 8888, or a free port if 8888 is taken)",
    )
    parser.add_argument(
        "--platform-port", type=int, default=0, help="local platform port (default: a free port)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser; print the URL only"
    )
    parser.add_argument(
        "--execute",
        action="store_true",
        help="run the example notebooks headless, report each, and exit",
    )


def run(args: argparse.Namespace) -> int:
    try:
        folder = _chosen_folder(args)
    except ValueError as exc:
        print(f"canfar-widgets demo: {exc}", file=sys.stderr)
        return 2
    if args.execute:
        needed = ("nbclient", "ipykernel")
    else:
        needed = ("notebook", "ipykernel") if args.notebook else ("jupyterlab", "ipykernel")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if not missing and needed[0] == "notebook" and not _is_notebook_7():
        missing = ["notebook>=7"]
    if missing:
        print(
            f"canfar-widgets demo needs {', '.join(missing)}: pip install 'canfar-widgets[demo]'",
            file=sys.stderr,
        )
        return 2
    from canfar_widgets.local import LocalPlatform

    server_class: type[JupyterServer] = JupyterNotebook if args.notebook else JupyterLab
    try:
        with contextlib.ExitStack() as stack:
            stop = stack.enter_context(_sigterm_as_ctrl_c())
            served = None
            if not args.execute:  # entered before the platform: kept or deleted after it stops
                served = stack.enter_context(_demo_folder(folder, args.examples, stop))
            platform = stack.enter_context(LocalPlatform(port=args.platform_port))
            env = platform_env(platform.url, platform.token)
            print(f"local platform: {platform.url}", flush=True)
            if served is None:
                return _execute_examples(env)
            return _serve(
                server_class, env, served, port=args.port, open_browser=not args.no_browser
            )
    except KeyboardInterrupt:
        return 130


def _chosen_folder(args: argparse.Namespace) -> Path | None:
    """The user's folder from ``DIR`` or ``--notebook-dir``, checked; None for the examples."""
    given = [Path(p).expanduser() for p in (args.folder, args.notebook_dir) if p is not None]
    if len(given) == 2 and given[0].resolve() != given[1].resolve():
        raise ValueError(f"two folders given ({given[0]} and --notebook-dir {given[1]}): give one")
    if not given:
        return None
    if args.execute:
        raise ValueError(
            f"--execute runs the bundled examples in a temporary folder; "
            f"it does not take a folder (got {given[0]})"
        )
    folder = given[0].resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(f"the folder to serve, {given[0]}, {what}")
    examples = folder / EXAMPLES_SUBFOLDER
    if args.examples and examples.exists() and not examples.is_dir():
        raise ValueError(
            f"--examples copies the examples into {examples}, but that is a file, not a folder"
        )
    if args.examples and not os.access(examples if examples.exists() else folder, os.W_OK):
        raise ValueError(
            f"--examples copies the examples into {examples}, but you cannot write there"
        )
    return folder


def _is_notebook_7() -> bool:
    try:
        major = importlib.metadata.version("notebook").split(".")[0]
    except importlib.metadata.PackageNotFoundError:
        return False
    return major.isdigit() and int(major) >= 7


@dataclass
class _Stop:
    """How the demo is being stopped: ``terminated`` once SIGTERM arrived (nobody to ask)."""

    terminated: bool = False


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[_Stop]:
    """While running, SIGTERM unwinds like Ctrl-C, so the server and the platform stop too."""
    stop = _Stop()

    def interrupt(signum: int, frame: Any) -> None:
        stop.terminated = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield stop
        return
    try:
        yield stop
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


def copy_examples(dest: Path, *, overwrite: bool = True) -> list[Path]:
    """Copy the example notebooks into ``dest`` (writable) and return the copies made.

    With ``overwrite=False`` a file already in ``dest`` is left as it is (and not returned):
    the person may have changed it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for src in example_notebooks():
        target = dest / src.name
        if overwrite or not target.exists():
            copies.append(Path(shutil.copy2(src, target)))
    return copies


def platform_env(url: str, token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the client pointed at a platform."""
    env = dict(os.environ if base is None else base)
    env.update(CANFAR_URL=url, CANFAR_TOKEN=token)
    return env


# -- what the person made -------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative POSIX path) with a digest of its content.

    Jupyter's own copies (``.ipynb_checkpoints`` and the like) are left out: they are not
    the person's work. Compare two snapshots with :func:`changed_files`.

    Example:
        >>> before = snapshot(root)
        >>> (root / "mine.ipynb").write_text("{}")
        >>> changed_files(root, before)
        ['mine.ipynb']
    """
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if _NOT_WORK.intersection(relative.parts) or not path.is_file():
            continue
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except OSError:  # unreadable: counted as changed (never delete what we cannot check)
            files[relative.as_posix()] = _UNREADABLE
            continue
        files[relative.as_posix()] = digest.hexdigest()
    return files


def changed_files(folder: Path, before: Mapping[str, str]) -> list[str]:
    """The files under ``folder`` added or changed since the snapshot ``before``, sorted."""
    now = snapshot(folder)
    return [
        name for name, digest in now.items() if digest == _UNREADABLE or before.get(name) != digest
    ]


# -- Jupyter servers ------------------------------------------------------------------------


class JupyterServer:
    """A Jupyter front end (``jupyter <app>``) on 127.0.0.1 in a subprocess, isolated from
    the user's settings. Use :class:`JupyterLab` or :class:`JupyterNotebook`.

    Its configuration lives in a temporary folder: ``allow_root`` when running as root, a
    random token, no news feed and no update check (no toasts over the page), and its own
    user-settings and workspaces folders, so a test switching the theme or a demo closing
    tabs never touches ``~/.jupyter``. ``env`` is the server's environment, which its
    kernels inherit.

    Example:
        >>> with JupyterLab(root_dir, env=platform_env(url, token)) as lab:
        ...     print(lab.url(lab.document_path("quickstart.ipynb")))
    """

    #: the ``jupyter`` subcommand that starts this front end
    app: ClassVar[str] = "lab"
    #: what a person calls it, in messages
    title: ClassVar[str] = "JupyterLab"
    #: the page :meth:`url` opens by default (the front end's file browser)
    home_path: ClassVar[str] = "lab"

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

    def url(self, path: str | None = None, *, with_token: bool = True) -> str:
        """An address on the server (default: its home page); with the token by default."""
        url = self.base_url + (self.home_path if path is None else path).lstrip("/")
        if with_token:
            url += ("&" if "?" in url else "?") + "token=" + self.token
        return url

    def document_path(self, name: str) -> str:
        """The path (for :meth:`url`) that opens file ``name`` of the root folder."""
        return f"lab/tree/{quote(name)}"

    def start(self: _Server, timeout: float = 60.0) -> _Server:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"canfar-widgets-{self.app}-")
        home = Path(self._tmp.name)
        config = self._write_config(home)
        log_path = self._log_path or home / f"jupyter{self.app}.log"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            self.app,
            f"--config={config}",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
        ]
        # Its own session: Ctrl-C in the terminal reaches only us, and we stop it with
        # SIGTERM (a SIGINT would make jupyter_server ask "Shutdown this server?").
        self._proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
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
            # Both front ends read the same folders: JupyterLab's LabApp and Notebook 7's
            # JupyterNotebookApp each have their own copy of these settings.
            f"c.LabApp.user_settings_dir = {str(settings)!r}",
            f"c.LabApp.workspaces_dir = {str(home / 'workspaces')!r}",
            f"c.JupyterNotebookApp.user_settings_dir = {str(settings)!r}",
            f"c.JupyterNotebookApp.workspaces_dir = {str(home / 'workspaces')!r}",
            "c.ServerApp.open_browser = False",
            # In this 0700 folder, not in argv (ps shows argv to every user) nor in the
            # environment (the kernels inherit it).
            f"c.IdentityProvider.token = {self.token!r}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("c.ServerApp.allow_root = True")
        config.write_text("\n".join(lines) + "\n")
        return config

    @property
    def settings_dir(self) -> Path:
        """The server's own user-settings folder (``@jupyterlab/...`` settings files).

        Only while it runs; a test can write a setting there before opening a page.
        """
        if self._tmp is None:
            raise RuntimeError(f"{self.title} is not running")
        return Path(self._tmp.name) / "user-settings"

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        status = self.url("api/status")
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.title} exited with code {self._proc.returncode} while starting:\n"
                    + _tail(log_path)
                )
            try:
                with urllib.request.urlopen(status, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.title} did not start in {timeout:.0f}s:\n" + _tail(log_path)
                )
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

    def __enter__(self: _Server) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JupyterLab(JupyterServer):
    """JupyterLab 4 (``jupyter lab``): notebooks open at ``lab/tree/<path>``.

    Example:
        >>> with JupyterLab(root_dir, env=platform_env(url, token)) as lab:
        ...     print(lab.url("lab/tree/quickstart.ipynb"))
    """


class JupyterNotebook(JupyterServer):
    """Notebook 7 (``jupyter notebook``): the file browser at ``tree``, notebooks at
    ``notebooks/<path>``, one document per browser tab.

    Example:
        >>> with JupyterNotebook(root_dir, env=platform_env(url, token)) as nb:
        ...     print(nb.url(nb.document_path("quickstart.ipynb")))
    """

    app = "notebook"
    title = "Notebook 7"
    home_path = "tree"

    def document_path(self, name: str) -> str:
        return f"notebooks/{quote(name)}"


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else a free port chosen by the OS."""
    for port in (preferred, 0) if preferred else (0,):
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


@dataclass
class _Served:
    """The folder the server serves, the document to open first, and what to say about it."""

    root: Path
    first: str | None
    about: str


@contextlib.contextmanager
def _demo_folder(folder: Path | None, examples: bool, stop: _Stop) -> Iterator[_Served]:
    """The person's folder as it is, or a temporary copy of the examples.

    The copy is deleted afterwards only if nothing in it was added or changed (see
    :func:`_keep_or_delete`); the person's folder is never deleted.
    """
    if folder is not None:
        first = _add_examples(folder) if examples else None
        yield _Served(folder, first, "your folder; nothing is deleted when the demo stops")
        return
    root = Path(tempfile.mkdtemp(prefix="canfar-widgets-demo-"))
    try:
        copy_examples(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    before = snapshot(root)
    try:
        yield _Served(
            root,
            FIRST_NOTEBOOK,
            "a temporary copy; anything you add or change is kept when the demo stops",
        )
    finally:
        _keep_or_delete(root, before, may_ask=not stop.terminated)


def _add_examples(folder: Path) -> str:
    """Copy the examples into ``folder``'s subfolder, never over a file; the one to open."""
    dest = folder / EXAMPLES_SUBFOLDER
    copied = {p.name for p in copy_examples(dest, overwrite=False)}
    for src in example_notebooks():
        if src.name not in copied and (dest / src.name).read_bytes() != src.read_bytes():
            print(f"left your {dest / src.name} as it is (not replaced by the example)", flush=True)
    return f"{EXAMPLES_SUBFOLDER}/{FIRST_NOTEBOOK}"


def _serve(
    server_class: type[JupyterServer],
    env: dict[str, str],
    served: _Served,
    *,
    port: int | None,
    open_browser: bool,
) -> int:
    if port and free_port(port) != port:
        print(f"port {port} on 127.0.0.1 is in use; pick another with --port", file=sys.stderr)
        return 2
    server = server_class(served.root, port=port or free_port(8888), env=env)
    print(f"starting {server.title}...", flush=True)
    with server:
        url = server.url(server.document_path(served.first) if served.first else None)
        print(
            f"\n{server.title}: {url}\nnotebooks:  {served.root} ({served.about})"
            "\n\nPress Ctrl-C to stop.",
            flush=True,
        )
        if open_browser:
            webbrowser.open(url)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nstopping...", flush=True)
            return 0
        print(f"{server.title} exited unexpectedly", file=sys.stderr)
        return 1


def _keep_or_delete(root: Path, before: Mapping[str, str], *, may_ask: bool) -> None:
    """Delete the temporary copy unless the person made something there.

    What they added or changed is kept (the whole folder, so notebooks keep their
    neighbours), and where it is printed. With a terminal attached they are asked first;
    no answer (end of input, Ctrl-C, SIGTERM) keeps it. Never blocks without a terminal.
    """
    made = changed_files(root, before) if root.exists() else []
    if not made:
        shutil.rmtree(root, ignore_errors=True)
        return
    shown = ", ".join(made[:5]) + (f" and {len(made) - 5} more" if len(made) > 5 else "")
    files = "1 file" if len(made) == 1 else f"{len(made)} files"
    print(f"\nyou added or changed {files} in {root}: {shown}", flush=True)
    if may_ask and _has_terminal():
        try:
            answer = input("Keep them? [Y/n] ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            answer = ""
            print(flush=True)
        if answer in ("n", "no"):
            try:
                shutil.rmtree(root)
            except OSError as exc:
                print(f"could not delete all of {root}: {exc}", file=sys.stderr, flush=True)
            else:
                print(f"deleted {root}", flush=True)
            return
    print(f"kept {root}\n(serve it again with: canfar-widgets demo {root})", flush=True)


def _has_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


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
            print(
                f"{result.name:<28} {'ok' if result.ok else 'FAILED':<7} {result.seconds:6.1f}s",
                flush=True,
            )
            if result.error:
                print("    " + result.error.replace("\n", "\n    "), flush=True)
    passed = sum(result.ok for result in results)
    print(f"{passed}/{len(results)} notebooks ran without errors", flush=True)
    return 0 if passed == len(results) else 1
