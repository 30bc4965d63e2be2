"""The batch record: one SQLite file that outlives kernels and the platform's own cleanup.

Why SQLite: two kernels may have the same batch open, and a re-run must happen once. SQLite
gives transactions across processes (``BEGIN IMMEDIATE`` takes the write lock), WAL lets
readers go on while one process writes, and it ships with Python.

What is kept: per batch its spec (image, cmd, args, env, resources), and per replica each
attempt (id, status, times, reason, archived logs and events). Never a token, a
certificate or a registry secret: the registry *username* only, so a re-run can say which
credentials it needs.

The file is ``platformdirs.user_data_dir("canfar-widgets")/batches.sqlite`` unless
``CANFAR_WIDGETS_BATCH_DB`` names another file. It is created readable by its owner only
(the spec's ``env`` is in it).

Example:
    >>> record = Record.default()
    >>> record.path.name
    'batches.sqlite'
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "AttemptRow", "BatchRow", "Record", "default_path"]

ENV_VAR = "CANFAR_WIDGETS_BATCH_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    total INTEGER NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    spec_known INTEGER NOT NULL DEFAULT 1,
    registry_user TEXT,
    destroyed REAL
);
CREATE INDEX IF NOT EXISTS batches_by_name ON batches (server, name, created);
CREATE TABLE IF NOT EXISTS attempts (
    batch INTEGER NOT NULL REFERENCES batches (id),
    replica INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    id TEXT,
    status TEXT NOT NULL,
    claimed REAL NOT NULL,
    started REAL,
    ended REAL,
    reason TEXT NOT NULL DEFAULT '',
    last_line TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    seen REAL,
    logs TEXT,
    events TEXT,
    PRIMARY KEY (batch, replica, attempt)
);
"""


def default_path() -> Path:
    """Where the record lives: ``$CANFAR_WIDGETS_BATCH_DB``, else the user's data directory."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("canfar-widgets")) / "batches.sqlite"


@dataclass
class BatchRow:
    """One recorded batch (a row of ``batches``)."""

    key: int
    server: str
    name: str
    created: float
    total: int
    retries: int
    spec: dict[str, Any]
    spec_known: bool
    registry_user: str | None
    destroyed: float | None


@dataclass
class AttemptRow:
    """One attempt of one replica (a row of ``attempts``)."""

    replica: int
    attempt: int
    id: str | None
    status: str
    claimed: float
    spec: dict[str, Any]
    started: float | None = None
    ended: float | None = None
    reason: str = ""
    last_line: str = ""
    deleted: bool = False
    seen: float | None = None  # when the platform last listed it while it was active
    # The archive: written here, but not read back with the rest (it can be large);
    # ``archived`` says it is there, :meth:`Record.text` reads it.
    logs: str | None = None
    events: str | None = None
    archived: bool = False
    # Which columns changed since loaded (what save_attempts writes back).
    dirty: set[str] = field(default_factory=set, repr=False, compare=False)

    def update(self, **values: Any) -> None:
        for key, value in values.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
                self.dirty.add(key)
        if "logs" in values:
            self.archived = True


_ATTEMPT_COLUMNS = (
    "replica",
    "attempt",
    "id",
    "status",
    "claimed",
    "started",
    "ended",
    "reason",
    "last_line",
    "spec",
    "deleted",
    "seen",
    "logs",
    "events",
)
# What is read back: everything but the archived texts, and whether they are there.
_LOADED = (*_ATTEMPT_COLUMNS[:-2], "logs IS NOT NULL")


class Record:
    """The record file; every call is its own short transaction on its own connection.

    A connection per call costs well under a millisecond and makes the record safe to use
    from any thread (the runner's, the caller's) and from any number of processes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._ready = False

    @classmethod
    def default(cls) -> Record:
        return cls(default_path())

    def __repr__(self) -> str:
        return f"Record({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._create()
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            yield conn
        finally:
            conn.close()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Owner-only from the start: the spec's env may matter to its owner.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()
        self._ready = True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` takes the lock before anything is read."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- batches -------------------------------------------------------------------------

    def add_batch(
        self,
        server: str,
        name: str,
        total: int,
        retries: int,
        spec: dict[str, Any],
        attempts: Sequence[AttemptRow],
        *,
        spec_known: bool = True,
        registry_user: str | None = None,
        created: float | None = None,
    ) -> int:
        """Record a batch and its first attempts in one transaction; returns its key."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO batches (server, name, created, total, retries, spec, spec_known,"
                " registry_user) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    server,
                    name,
                    time.time() if created is None else created,
                    total,
                    retries,
                    json.dumps(spec),
                    int(spec_known),
                    registry_user,
                ),
            )
            key = int(cursor.lastrowid or 0)
            _insert_attempts(conn, key, attempts)
        return key

    def newest(self, server: str, name: str) -> BatchRow | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM batches WHERE server = ? AND name = ? ORDER BY created DESC, id DESC"
                " LIMIT 1",
                (server, name),
            ).fetchone()
        return _batch(row) if row is not None else None

    def batch(self, key: int) -> BatchRow:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM batches WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise LookupError(f"batch {key} is not in the record {self.path}")
        return _batch(row)

    def batches(self, server: str) -> list[BatchRow]:
        """The server's batches, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM batches WHERE server = ? ORDER BY created DESC, id DESC", (server,)
            ).fetchall()
        return [_batch(row) for row in rows]

    def mark_destroyed(self, key: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE batches SET destroyed = ? WHERE id = ?", (time.time(), key))

    def known_ids(self, server: str) -> set[str]:
        """Every session id any batch of this server has recorded (name matching skips them)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT a.id FROM attempts a JOIN batches b ON a.batch = b.id"
                " WHERE b.server = ? AND a.id IS NOT NULL",
                (server,),
            ).fetchall()
        return {str(row[0]) for row in rows}

    # -- attempts ------------------------------------------------------------------------

    def attempts(self, key: int, conn: sqlite3.Connection | None = None) -> list[AttemptRow]:
        """Every attempt of the batch, by replica then attempt."""
        query = (
            f"SELECT {', '.join(_LOADED)} FROM attempts WHERE batch = ? ORDER BY replica, attempt"
        )
        if conn is not None:
            rows = conn.execute(query, (key,)).fetchall()
        else:
            with self._connect() as own:
                rows = own.execute(query, (key,)).fetchall()
        specs: dict[str, dict[str, Any]] = {}  # attempts mostly share one spec: parse it once
        return [_attempt(row, specs) for row in rows]

    def text(self, key: int, replica: int, attempt: int, view: str) -> str | None:
        """The archived ``logs`` or ``events`` of one attempt (None when not archived)."""
        column = {"logs": "logs", "events": "events"}[view]
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {column} FROM attempts WHERE batch = ? AND replica = ? AND attempt = ?",
                (key, replica, attempt),
            ).fetchone()
        return None if row is None else row[0]

    def save(
        self, key: int, attempts: Sequence[AttemptRow], conn: sqlite3.Connection | None = None
    ) -> None:
        """Write back what changed in these attempts (one transaction, or the caller's)."""
        changed = [a for a in attempts if a.dirty]
        if not changed:
            return
        if conn is None:
            with self.transaction() as own:
                _update_attempts(own, key, changed)
        else:
            _update_attempts(conn, key, changed)
        for attempt in changed:
            attempt.dirty.clear()
            attempt.logs = attempt.events = None  # written; read back on demand (text())

    def claim(
        self,
        key: int,
        wanted: dict[int, int],
        spec_for: dict[int, dict[str, Any]],
    ) -> list[AttemptRow]:
        """Claim new attempts of replicas, once: ``wanted`` maps replica -> the attempt it must
        still be at. A replica another process has moved on meanwhile is skipped.

        This is the guard against duplicate re-runs: the check and the insert happen in one
        write transaction, before any POST.
        """
        now = time.time()
        claimed: list[AttemptRow] = []
        with self.transaction() as conn:
            current = dict(
                conn.execute(
                    "SELECT replica, MAX(attempt) FROM attempts WHERE batch = ? GROUP BY replica",
                    (key,),
                ).fetchall()
            )
            for replica, attempt in sorted(wanted.items()):
                if current.get(replica, 0) != attempt:
                    continue
                claimed.append(
                    AttemptRow(
                        replica=replica,
                        attempt=attempt + 1,
                        id=None,
                        status="Launching",
                        claimed=now,
                        spec=spec_for[replica],
                    )
                )
            _insert_attempts(conn, key, claimed)
        return claimed


def _insert_attempts(conn: sqlite3.Connection, key: int, attempts: Sequence[AttemptRow]) -> None:
    conn.executemany(
        f"INSERT INTO attempts (batch, {', '.join(_ATTEMPT_COLUMNS)})"
        f" VALUES (?, {', '.join('?' for _ in _ATTEMPT_COLUMNS)})",
        [(key, *_values(a)) for a in attempts],
    )
    for attempt in attempts:
        attempt.dirty.clear()


def _update_attempts(conn: sqlite3.Connection, key: int, attempts: Sequence[AttemptRow]) -> None:
    for attempt in attempts:
        columns = sorted(attempt.dirty)
        values = [_column(attempt, c) for c in columns]
        conn.execute(
            f"UPDATE attempts SET {', '.join(f'{c} = ?' for c in columns)}"
            " WHERE batch = ? AND replica = ? AND attempt = ?",
            (*values, key, attempt.replica, attempt.attempt),
        )


def _column(attempt: AttemptRow, name: str) -> Any:
    value = getattr(attempt, name)
    if name == "spec":
        return json.dumps(value)
    if name == "deleted":
        return int(value)
    return value


def _values(attempt: AttemptRow) -> tuple[Any, ...]:
    return tuple(_column(attempt, name) for name in _ATTEMPT_COLUMNS)


def _attempt(row: Sequence[Any], specs: dict[str, dict[str, Any]]) -> AttemptRow:
    *values, archived = row
    data = dict(zip(_ATTEMPT_COLUMNS[:-2], values, strict=True))
    text = data["spec"]
    if text not in specs:
        specs[text] = json.loads(text)
    data["spec"] = dict(specs[text])
    data["deleted"] = bool(data["deleted"])
    return AttemptRow(**data, archived=bool(archived))


def _batch(row: Sequence[Any]) -> BatchRow:
    (key, server, name, created, total, retries, spec, spec_known, registry_user, destroyed) = row
    return BatchRow(
        key=int(key),
        server=server,
        name=name,
        created=float(created),
        total=int(total),
        retries=int(retries),
        spec=json.loads(spec),
        spec_known=bool(spec_known),
        registry_user=registry_user,
        destroyed=destroyed,
    )
