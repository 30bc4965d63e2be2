"""The platform's memory on disk: every session record in ``<workdir>/state.sqlite3``.

A platform restarted on the same workdir reads it back, so earlier sessions are listed with
truthful states (see :meth:`SessionStore.restore`). Writes are batched by the store (one
transaction per burst of changes). A failing disk never stops the platform: the first error
is logged and the state is then kept in memory only, as :attr:`StateFile.problem` says.

The file is private to the user (0600). It holds what the API shows (records, events) and
never the request's ``env`` values or any token.

Example:
    >>> state = StateFile(Path("/tmp/wd/state.sqlite3"))   # doctest: +SKIP
    >>> state.write({"abcd1234": {...}}, deleted=[])       # doctest: +SKIP
    >>> list(state.load())                                 # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["StateFile"]

log = logging.getLogger("canfar_widgets.local")

_SCHEMA = "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, data TEXT NOT NULL)"


class StateFile:
    """Session records by key, in SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None
        self._db: sqlite3.Connection | None = None
        try:
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.problem is None:
            log.error(
                "cannot keep the local platform's state in %s: %s; it is kept in "
                "memory only from now on",
                self.path,
                exc,
            )
        self.problem = f"{type(exc).__name__}: {exc}"
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def load(self) -> list[dict[str, Any]]:
        """Every stored record (in no particular order)."""
        if self._db is None:
            return []
        try:
            rows = self._db.execute("SELECT data FROM sessions").fetchall()
        except sqlite3.Error as exc:
            self._fail(exc)
            return []
        out = []
        for (data,) in rows:
            with contextlib.suppress(ValueError):
                out.append(json.loads(data))
        return out

    def write(self, changed: Mapping[str, dict[str, Any]], deleted: Iterable[str]) -> None:
        """Store ``changed`` records and drop ``deleted`` keys, in one transaction."""
        db = self._db
        if db is None:
            return
        try:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO sessions (key, data) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in changed.items()],
            )
            db.executemany("DELETE FROM sessions WHERE key = ?", [(k,) for k in deleted])
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._fail(exc)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
