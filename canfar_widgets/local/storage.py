"""The storage root jobs see at ``/arc``, and how a job is wrapped so it sees it there.

CANFAR sessions share one storage tree, ``/arc``, with ``home/<user>`` and
``projects/<name>``; a headless job starts in ``/arc/home/<user>`` with ``HOME`` set to it.
Here the tree is a local directory (the *storage root*), and on Linux each job runs under
bubblewrap (``bwrap``) in its own mount namespace where that directory is mounted at
``/arc``. The rest of the host's filesystem stays visible as it is (this is a process
runtime, not a sandbox), so absolute paths that work outside keep working inside.

How the namespace is built (works as root and as an ordinary user, and never writes to the
host's ``/``): a fresh tmpfs as ``/``, every top-level entry of the host's ``/`` bound back
onto it (symlinks recreated), then the storage root bound at ``/arc``. ``--unshare-pid``
gives the job its own PID namespace, so when bwrap dies every process of the job dies with
it, even one that left the process group; ``--die-with-parent`` makes bwrap die with the
platform.

Where bwrap is missing or refused (macOS, user namespaces disabled), jobs run directly with
``HOME`` and working directory ``<root>/home/<user>``; :attr:`Storage.note` says why.

Example:
    >>> storage = Storage.prepare("/tmp/arc-example", mount=False)
    >>> storage.job_home("alice")
    '/tmp/arc-example/home/alice'
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ARC", "Storage", "find_bwrap"]

log = logging.getLogger("canfar_widgets.local")

ARC = "/arc"  # where CANFAR mounts its storage, and where jobs see the storage root


def find_bwrap() -> str | None:
    """The bubblewrap binary, if this is Linux and it is installed."""
    if not sys.platform.startswith("linux"):
        return None
    if os.access("/usr/bin/bwrap", os.X_OK):
        return "/usr/bin/bwrap"
    return shutil.which("bwrap")


@dataclass(frozen=True)
class Storage:
    """The storage root and whether jobs see it at ``/arc``.

    Attributes:
        root: the local directory (``/arc`` of the jobs).
        bwrap: the bubblewrap binary used to mount it, or None.
        note: why jobs do not see ``/arc`` (empty when they do).
    """

    root: Path
    bwrap: str | None
    note: str = ""

    @property
    def mounted(self) -> bool:
        """Whether jobs see the storage root at ``/arc``."""
        return self.bwrap is not None

    @classmethod
    def prepare(cls, root: str | Path, *, mount: bool = True) -> Storage:
        """Create ``root`` (with ``home`` and ``projects``) and find out whether it can be
        mounted at ``/arc`` (one trial run of bwrap)."""
        path = Path(root).expanduser().resolve()
        for sub in ("home", "projects"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        if not mount:
            return cls(path, None, "mounting /arc was turned off")
        binary = find_bwrap()
        if binary is None:
            why = (
                "bubblewrap (bwrap) is not installed"
                if sys.platform.startswith("linux")
                else f"no mount namespaces on {sys.platform}"
            )
            return cls(path, None, why)
        trial = cls(path, binary)
        try:
            done = subprocess.run(
                trial.wrap(["true"], cwd=ARC), capture_output=True, timeout=20, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return cls(path, None, f"bwrap cannot run: {exc}")
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            return cls(
                path, None, f"bwrap was refused: {detail[-1] if detail else done.returncode}"
            )
        return trial

    # ------------------------------------------------------------------ paths
    def home(self, user: str) -> Path:
        """The local path of ``user``'s home (created if missing)."""
        path = self.root / "home" / user
        path.mkdir(parents=True, exist_ok=True)
        return path

    def job_home(self, user: str) -> str:
        """``HOME`` and the working directory as the job sees them."""
        return f"{ARC}/home/{user}" if self.mounted else str(self.root / "home" / user)

    def local(self, path: str, cwd: str) -> Path:
        """The host path of a path as a job sees it (``/arc/...`` -> the storage root)."""
        full = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
        if self.mounted and (full == ARC or full.startswith(ARC + "/")):
            return self.root / full[len(ARC) + 1 :]
        return Path(full)

    # ---------------------------------------------------------------- running
    def wrap(self, argv: list[str], *, cwd: str) -> list[str]:
        """The argv that runs ``argv`` with the storage root at ``/arc`` and ``cwd`` as the
        working directory (``argv`` itself when nothing can be mounted)."""
        if self.bwrap is None:
            return list(argv)
        out = [self.bwrap, "--die-with-parent", "--unshare-pid", "--as-pid-1", "--tmpfs", "/"]
        for entry in sorted(os.listdir("/")):
            host = "/" + entry
            if host in (ARC, "/proc"):
                continue
            if os.path.islink(host):
                out += ["--symlink", os.readlink(host), host]
            elif os.path.isdir(host):
                out += ["--dev-bind", host, host]
            elif os.path.exists(host):
                out += ["--bind", host, host]
        out += ["--proc", "/proc", "--bind", str(self.root), ARC, "--chdir", cwd, "--", *argv]
        return out

    def check_command(self, cmd: str, *, path: str, cwd: str) -> OSError | None:
        """Why ``cmd`` cannot be executed in the job (as ``execvp`` would fail), or None.

        Run before the job starts, so a missing command fails with the container runtime's
        words rather than with bwrap's.
        """
        if "/" in cmd:
            candidates = [self.local(cmd, cwd)]
        else:
            candidates = [self.local(f"{d or '.'}/{cmd}", cwd) for d in path.split(os.pathsep)]
        denied = False
        for candidate in candidates:
            if not candidate.exists():
                continue
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return None
            denied = True
        if denied:
            return OSError(errno.EACCES, os.strerror(errno.EACCES), cmd)
        return OSError(errno.ENOENT, os.strerror(errno.ENOENT), cmd)
