"""Where ``/arc`` is from here, and the files a batch's replicas wrote.

Inside a CANFAR session ``/arc`` is mounted and paths are used as they are. Next to a local
platform, ``/arc`` is that platform's storage root: a running local platform writes
``<user_state_dir>/local-platforms/<port>.json`` with ``{"url", "arc", "pid"}``, and the
file whose ``url`` is the batch's server (and whose process is alive) gives the root.

Example:
    >>> resolve("/arc/projects/demo/out-{replica:02d}.fits".format(replica=3), root="/tmp/arc")
    PosixPath('/tmp/arc/projects/demo/out-03.fits')
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["Outputs", "arc_root", "find_outputs", "local_arc", "resolve"]

ARC = PurePosixPath("/arc")


@dataclass
class Outputs:
    """What :meth:`Batch.outputs` found: files per replica, and the replicas with none.

    Example:
        >>> outputs = batch.outputs("/arc/home/me/run/frame-{replica:02d}-*.txt")
        >>> outputs.missing
        [4, 7]
    """

    found: dict[int, list[Path]] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """Every file found, in replica order."""
        return [path for replica in sorted(self.found) for path in self.found[replica]]

    def __repr__(self) -> str:
        return (
            f"Outputs({len(self.files)} files from {len(self.found)} replicas; "
            f"missing: {self.missing})"
        )


def local_arc(server: str) -> Path | None:
    """The storage root of the running local platform serving ``server``, if any.

    Read from the platform's announcement (:mod:`canfar_widgets.local.discovery`, which
    imports nothing of the platform itself).
    """
    from canfar_widgets.local import discovery

    wanted = server.rstrip("/")
    for entry in discovery.read_all():
        url, arc = entry.get("url"), entry.get("arc")
        if isinstance(url, str) and isinstance(arc, str) and url.rstrip("/") == wanted:
            return Path(arc)
    return None


def arc_root(server: str) -> Path:
    """Where ``/arc`` is for this process: mounted here, else the local platform's storage.

    Raises:
        FileNotFoundError: neither, in plain words, naming the ``root=`` way out.
    """
    if Path(ARC).is_dir():
        return Path(ARC)
    local = local_arc(server)
    if local is not None:
        return local
    raise FileNotFoundError(
        f"/arc is not mounted here and no running local platform serves {server.rstrip('/')}; "
        "pass root= (the folder that stands for /arc)"
    )


def resolve(
    path: str, *, root: str | os.PathLike[str] | None = None, server: str | None = None
) -> Path:
    """``path`` as a path on this machine.

    Under ``/arc``: below ``root`` when given, else below :func:`arc_root`. Any other
    absolute path is used as is; a relative one is below ``root`` (or the working directory).
    """
    pure = PurePosixPath(path)
    if _under_arc(path):
        relative = pure.relative_to(ARC)
        if root is not None:
            base = Path(root)
        elif server is not None:
            base = arc_root(server)
        else:
            base = Path(ARC)
        return base / relative
    if pure.is_absolute() or root is None:
        return Path(path)
    return Path(root) / path


def _under_arc(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure == ARC or ARC in pure.parents


def find_outputs(
    pattern: str, replicas: list[int], *, root: str | os.PathLike[str] | None, server: str
) -> Outputs:
    """Glob ``pattern`` (with ``{replica}``, format spec allowed) once per replica."""
    if "{replica" not in pattern:
        raise ValueError(
            "pattern: must contain {replica} (e.g. '/arc/home/me/out/frame-{replica:02d}.fits')"
        )
    if root is None and _under_arc(pattern.split("{", 1)[0] or "/"):
        root = arc_root(server)  # once, not once per replica
    outputs = Outputs()
    for replica in replicas:
        try:
            text = pattern.format(replica=replica)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"pattern: only {{replica}} may be in braces ({type(err).__name__}: {err}); "
                "write a literal brace as {{ or }}"
            ) from None
        path = resolve(text, root=root, server=server)
        hits = sorted(Path(p) for p in glob.glob(str(path)))
        if hits:
            outputs.found[replica] = hits
        else:
            outputs.missing.append(replica)
    return outputs
