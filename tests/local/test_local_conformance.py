"""Real clients drive the local platform through a whole session lifecycle.

The official ``canfar`` client (1.5.2, sync and async) must work against it unchanged, and so
must this project's ``canfar_widgets.sessions`` client.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import support
from local_support import TERMINAL

from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.timeout(90)

ID = re.compile(r"^[a-z][a-z0-9]{7}$")

ASTROML = "images.canfar.net/skaha/astroml:latest"
EVENTS_HEADER = re.compile(r"^TYPE +REASON +MESSAGE +FIRST-TIME +LAST-TIME$", re.M)


@pytest.fixture
def platform(make_platform: Callable[..., LocalPlatform]) -> LocalPlatform:
    return make_platform(start_delay=0.15)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    return support.wait_for(predicate, timeout, step=0.03)


async def await_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.03)


def _check_replica_logs(infos: list[dict[str, Any]], logs: dict[str, str]) -> None:
    names = {record["id"]: record["name"] for record in infos}
    assert sorted(names.values()) == ["conf-job-1", "conf-job-2", "conf-job-3"]
    for sid, name in names.items():
        replica = name.rsplit("-", 1)[1]
        assert logs[sid] == f"{replica}\n"  # printenv REPLICA_ID, one line per replica


def _check_events(events: list[dict[str, str]], ids: list[str]) -> None:
    assert [next(iter(e)) for e in events] == ids
    for entry in events:
        text = next(iter(entry.values()))
        assert EVENTS_HEADER.search(text)
        assert "Started" in text and "Completed" in text


# The headless job both stories launch (three replicas that print their number).
CONF_JOB: dict[str, Any] = {
    "name": "conf-job",
    "image": TERMINAL,
    "cmd": "printenv",
    "args": "REPLICA_ID",
    "env": {"GREETING": "hi"},
    "replicas": 3,
}


def lifecycle(session: Any) -> None:
    """The whole story with a sync client (official or ours: same API)."""
    ids = session.create(**CONF_JOB)
    assert len(ids) == 3 and all(ID.match(i) for i in ids)
    wait_for(lambda: [r["status"] for r in session.info(ids)] == ["Completed"] * 3)
    infos = session.info(ids)
    _check_replica_logs(infos, session.logs(ids))
    _check_events(session.events(ids), ids)

    completed = {r["id"] for r in session.fetch(kind="headless", status="Completed")}
    assert set(ids) <= completed
    assert session.fetch(kind="notebook") == []
    assert session.info("nosuch00") == []
    assert session.renew(ids[0]) == {ids[0]: False}  # finished: no active job

    (notebook,) = session.create(name="conf-nb", image=ASTROML, kind="notebook")
    wait_for(lambda: session.info(notebook)[0]["status"] == "Running")
    running = session.fetch(kind="notebook", status="Running")
    assert [r["id"] for r in running] == [notebook]
    assert running[0]["connectURL"].endswith(f"?token={notebook}")
    assert session.renew(notebook) == {notebook: True}

    assert session.destroy_with(prefix="conf-job") == {i: True for i in ids}
    wait_for(lambda: not ({r["id"] for r in session.fetch(kind="headless")} & set(ids)))
    assert session.destroy(notebook) == {notebook: True}
    wait_for(lambda: session.fetch() == [])

    stats = session.stats()
    assert {"cores", "ram"} <= set(stats)
    assert stats["cores"]["cpuCoresAvailable"] > 0


async def alifecycle(session: Any) -> None:
    """The same story with an async client."""
    ids = await session.create(**CONF_JOB)
    assert len(ids) == 3 and all(ID.match(i) for i in ids)

    async def all_completed() -> bool:
        return [r["status"] for r in await session.info(ids)] == ["Completed"] * 3

    await await_for(all_completed)
    infos = await session.info(ids)
    _check_replica_logs(infos, await session.logs(ids))
    _check_events(await session.events(ids), ids)

    completed = {r["id"] for r in await session.fetch(kind="headless", status="Completed")}
    assert set(ids) <= completed
    assert await session.fetch(kind="carta") == []

    (notebook,) = await session.create(name="conf-nb", image=ASTROML, kind="notebook")

    async def notebook_running() -> bool:
        return (await session.info(notebook))[0]["status"] == "Running"

    await await_for(notebook_running)
    assert await session.renew(notebook) == {notebook: True}
    assert await session.destroy_with(prefix="conf-job") == {i: True for i in ids}

    async def jobs_gone() -> bool:
        return not ({r["id"] for r in await session.fetch(kind="headless")} & set(ids))

    await await_for(jobs_gone)
    assert await session.destroy(notebook) == {notebook: True}
    assert "cores" in await session.stats()


# ------------------------------------------------------------------- official client


def test_official_session(platform: LocalPlatform) -> None:
    from canfar.sessions import Session

    with Session(url=platform.url, token=platform.token) as session:
        lifecycle(session)


async def test_official_async_session(platform: LocalPlatform) -> None:
    from canfar.sessions import AsyncSession

    async with AsyncSession(url=platform.url, token=platform.token) as session:
        await alifecycle(session)


def test_official_client_sees_server_errors(platform: LocalPlatform) -> None:
    import httpx2
    from canfar.sessions import Session

    with Session(url=platform.url, token=platform.token) as session:
        assert session.create(name="bad", image="docker.io/x") == []  # 400: logged, omitted
    with (
        Session(url=platform.url, token="wrong") as intruder,
        pytest.raises(httpx2.HTTPStatusError) as caught,
    ):
        intruder.fetch()
    assert caught.value.response.status_code == 401


# ------------------------------------------------------------------ this project's client


def _project_sessions() -> Any:
    return pytest.importorskip("canfar_widgets.sessions", exc_type=ImportError)


def test_project_session(platform: LocalPlatform) -> None:
    _project_sessions()
    with platform.session() as session:
        lifecycle(session)


async def test_project_async_session(platform: LocalPlatform) -> None:
    _project_sessions()
    async with platform.async_session() as session:
        await alifecycle(session)


# --------------------------------------------------------- the canfar docs' headline example


def _docs_example(session: Any) -> None:
    """canfar's documented create() call, unchanged, as the real platform accepts it."""
    ids = session.create(
        name="test",
        image="images.canfar.net/skaha/base-notebook:latest",
        cores=2,
        ram=8,
        gpu=1,
        kind="headless",
        cmd="env",
        env={"KEY": "VALUE"},
        replicas=3,
    )
    assert len(ids) == 3 and all(ID.match(i) for i in ids)
    wait_for(lambda: [r["status"] for r in session.info(ids)] == ["Completed"] * 3)
    for record in session.info(ids):
        assert record["requestedCPUCores"] == "2" and record["requestedRAM"] == "8.59"
        # gpus=1 passes the server's check, but a platform without GPU scheduling grants none
        assert record["requestedGPUCores"] == "0"
    for sid, text in session.logs(ids).items():
        lines = text.splitlines()
        assert "KEY=VALUE" in lines and "REPLICA_COUNT=3" in lines, (sid, lines)


def test_docs_example_with_official_client(platform: LocalPlatform) -> None:
    from canfar.sessions import Session

    with Session(url=platform.url, token=platform.token) as session:
        _docs_example(session)


def test_docs_example_with_project_client(platform: LocalPlatform) -> None:
    _project_sessions()
    with platform.session() as session:
        _docs_example(session)
