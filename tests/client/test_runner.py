"""The event-loop-safe runner: sync, async, interrupts, background errors, shutdown, Jupyter."""

from __future__ import annotations

import _thread
import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from stub_skaha import StubSkaha
from support import dev_mode_complaints

from canfar_widgets import runner as runner_module
from canfar_widgets.runner import Runner, allow_nested_asyncio, get_runner


@pytest.fixture
def runner():
    r = Runner(name="test-runner")
    yield r
    r.shutdown()


async def _thread_name() -> str:
    return threading.current_thread().name


# -- run / arun ------------------------------------------------------------------------------


def test_run_from_sync_code(runner):
    assert runner.run(asyncio.sleep(0, result=42)) == 42
    assert runner.run(_thread_name()) == "test-runner"
    assert runner.started


def test_run_and_arun_inside_asyncio_run(runner):
    async def main():
        blocking = runner.run(_thread_name())  # blocks this loop, but works
        awaited = await runner.arun(_thread_name())
        return blocking, awaited, threading.current_thread().name

    blocking, awaited, caller = asyncio.run(main())
    assert blocking == awaited == "test-runner"
    assert caller != "test-runner"


def test_session_works_inside_a_uvloop_loop(runner):
    """A user's uvloop (uvicorn, FastAPI, solara): run(), arun() and AsyncSession all work."""
    uvloop = pytest.importorskip("uvloop")
    from canfar_widgets.sessions import AsyncSession, Session

    with StubSkaha() as api:

        async def main():
            loop_type = type(asyncio.get_running_loop()).__module__
            blocking = runner.run(_thread_name())
            awaited = await runner.arun(_thread_name())
            async with AsyncSession(url=api.url, token="t") as session:
                listed = await session.fetch()
            with Session(url=api.url, token="t") as sync_session:  # blocks this loop briefly
                listed_sync = sync_session.fetch()
            with pytest.raises(RuntimeError, match=r"uvloop|stock asyncio"):
                allow_nested_asyncio()  # refuses to patch a uvloop loop
            return loop_type, blocking, awaited, listed, listed_sync

        loop_type, blocking, awaited, listed, listed_sync = uvloop.run(main())
    assert loop_type.startswith("uvloop")
    assert blocking == awaited == "test-runner"
    assert listed == listed_sync and listed


def test_run_from_runner_thread_refuses(runner):
    async def inner():
        return 1

    async def outer():
        with pytest.raises(RuntimeError, match="deadlock"):
            runner.run(inner())  # the coroutine is closed: no "never awaited" warning
        return await runner.arun(inner())  # on the runner thread arun just awaits

    assert runner.run(outer()) == 1


def test_exceptions_propagate(runner):
    async def boom():
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        runner.run(boom())


@pytest.mark.timeout(10)
def test_coroutine_timeout_error_is_not_mistaken_for_waiting(runner):
    # On Python >= 3.11 concurrent.futures.TimeoutError is TimeoutError; run() used to spin.
    async def times_out():
        raise TimeoutError("the coroutine's own")

    with pytest.raises(TimeoutError, match="the coroutine's own"):
        runner.run(times_out())


def _watched_sleep(cancelled: threading.Event, started: threading.Event | None = None):
    async def sleeper():
        if started is not None:
            started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return sleeper()


def test_timeout_cancels_the_coroutine(runner):
    cancelled = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="gave up"):
        runner.run(_watched_sleep(cancelled), timeout=0.2)
    assert time.monotonic() - t0 < 5
    assert cancelled.wait(5)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="main thread")
def test_keyboard_interrupt_cancels_the_coroutine(runner):
    cancelled, started = threading.Event(), threading.Event()

    def interrupt():
        started.wait(5)
        _thread.interrupt_main()  # what Ctrl-C / a Jupyter kernel interrupt does

    timer = threading.Timer(0.05, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run(_watched_sleep(cancelled, started))
    finally:
        timer.cancel()
    assert cancelled.wait(5)


async def test_cancelling_arun_cancels_the_work(runner):
    cancelled, started = threading.Event(), threading.Event()
    task = asyncio.create_task(runner.arun(_watched_sleep(cancelled, started)))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(cancelled.wait, 5)


def test_a_long_run_looks_the_kernel_pump_up_once_and_serves_it(runner, monkeypatch):
    """run() looks the pump up once, after waiting a little, then serves it every slice."""
    lookups: list[str] = []
    served: list[int] = []

    class Pump:
        def serve(self) -> int:
            served.append(1)
            return 0

    def lookup():
        lookups.append(threading.current_thread().name)
        return Pump()

    monkeypatch.setattr(runner_module.kernel_pump, "pump_for_this_thread", lookup)
    assert runner.run(asyncio.sleep(1.0, result="slow")) == "slow"
    assert lookups == [threading.current_thread().name]
    assert served  # served between wait slices (once per slice while it keeps waiting)

    # The coroutine's own failure still comes through a pumped wait unchanged.
    async def fails_late():
        await asyncio.sleep(0.6)
        raise ValueError("late")

    with pytest.raises(ValueError, match="late"):
        runner.run(fails_late())


# -- spawn -----------------------------------------------------------------------------------


def test_spawn_routes_errors_to_the_callback(runner):
    seen: list[BaseException] = []
    got = threading.Event()

    def on_error(exc: BaseException) -> None:
        seen.append(exc)
        got.set()

    async def fails():
        raise RuntimeError("background failure")

    future = runner.spawn(fails(), on_error=on_error, name="failing")
    assert got.wait(5)
    assert isinstance(seen[0], RuntimeError)
    with pytest.raises(RuntimeError, match="background failure"):
        future.result(5)
    assert runner.task_count == 0


def test_spawn_without_callback_logs(runner, caplog):
    async def fails():
        raise RuntimeError("logged failure")

    with caplog.at_level(logging.ERROR, logger="canfar_widgets.runner"):
        future = runner.spawn(fails(), name="lonely")
        with pytest.raises(RuntimeError):
            future.result(5)
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert any("lonely" in r.getMessage() for r in caplog.records)


def test_spawn_result_and_cancel(runner):
    assert runner.spawn(asyncio.sleep(0, result="ok")).result(5) == "ok"
    cancelled, started = threading.Event(), threading.Event()
    future = runner.spawn(_watched_sleep(cancelled, started))
    assert started.wait(5)
    assert future.cancel()  # a running background task can still be cancelled
    assert cancelled.wait(5)


# -- shutdown ------------------------------------------------------------------------------


def test_shutdown_is_idempotent_and_final(runner):
    runner.run(asyncio.sleep(0))
    runner.shutdown()
    runner.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        runner.run(asyncio.sleep(0))


def test_get_runner_replaces_a_shut_down_runner(monkeypatch):
    monkeypatch.setattr(runner_module, "_shared", None)
    first = get_runner()
    assert get_runner() is first
    first.shutdown()
    second = get_runner()
    assert second is not first
    assert second.run(asyncio.sleep(0, result=1)) == 1
    second.shutdown()


def _clean_env(home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR_", "SKAHA_"))}
    env["HOME"] = str(home)
    env["PYTHONWARNINGS"] = "default"  # show ResourceWarnings and friends if any
    return env


@pytest.mark.timeout(60)
def test_interpreter_exit_is_quiet(tmp_path):
    """A process that used Session, left a background task and never closed anything exits cleanly."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from canfar_widgets.runner import get_runner
        from canfar_widgets.sessions import AsyncSession, Session

        url = sys.argv[1]
        session = Session(url=url, token="t")          # never closed on purpose
        assert len(session.fetch()) == 2
        assert session.logs("abc12345")["abc12345"].startswith("log line")

        async def main():
            a = AsyncSession(url=url, token="t")      # never closed either
            return await a.info(["abc12345", "def67890"])

        assert len(asyncio.run(main())) == 2
        get_runner().spawn(asyncio.sleep(3600))       # still running at exit
        print("done")
        """
    )
    with StubSkaha() as server:
        proc = subprocess.run(
            [sys.executable, "-X", "dev", "-c", script, server.url],
            capture_output=True,
            text=True,
            timeout=50,
            env=_clean_env(tmp_path),
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert dev_mode_complaints(proc.stderr) == []  # CI once saw a 0.146 s first step


# -- allow_nested_asyncio ------------------------------------------------------------------------


def test_allow_nested_asyncio_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="no event loop is running"):
        allow_nested_asyncio()


def test_allow_nested_asyncio_refuses_the_runner_thread():
    async def inside():
        allow_nested_asyncio()

    with pytest.raises(RuntimeError, match="runner loop"):
        get_runner().run(inside())


# -- a real Jupyter kernel ---------------------------------------------------------------------------


@pytest.mark.notebook
@pytest.mark.timeout(180)
def test_in_a_real_ipykernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for key in list(os.environ):
        if key.upper().startswith(("CANFAR_", "SKAHA_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))

    with StubSkaha() as server:
        cells = [
            f"""
            import asyncio, threading
            from canfar_widgets.runner import get_runner
            from canfar_widgets.sessions import AsyncSession, Session
            URL = {server.url!r}
            asyncio.get_running_loop() is not None  # the kernel runs a loop in this thread
            """,
            # sync facade inside the kernel's running loop
            """
            session = Session(url=URL, token="t")
            print(sorted(r["id"] for r in session.fetch()))
            """,
            # runner.run from a cell, then top-level await of arun
            """
            async def where():
                return threading.current_thread().name
            print("run:", get_runner().run(where()))
            """,
            'print("arun:", await get_runner().arun(where()))',
            # AsyncSession awaited on the kernel loop
            """
            async with AsyncSession(url=URL, token="t") as a:
                records = await a.info(["abc12345", "nope0000"])
            print("async:", [r["name"] for r in records])
            """,
            # plain `with AsyncSession()` in async code, as canfar's docs write it
            """
            with AsyncSession(url=URL, token="t") as b:
                texts = await b.logs("abc12345")
            print("with:", texts["abc12345"].strip())
            """,
            # verbose output lands in this cell; connect renders a link
            'session.logs("abc12345", verbose=True)',
            'session.connect("abc12345")',
            "session.close()",
        ]
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells]
        client = nbclient.NotebookClient(
            nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()

    def text(index: int) -> str:
        out = []
        for item in nb.cells[index].outputs:
            if item.get("output_type") == "stream" and item.get("name") == "stdout":
                out.append(item["text"])
            elif item.get("output_type") == "error":
                raise AssertionError(f"cell {index} failed: {item['ename']}: {item['evalue']}")
        return "".join(out)

    assert text(1).strip() == json.dumps(["abc12345", "def67890"]).replace('"', "'")
    assert text(2).strip() == "run: canfar-widgets-loop"
    assert text(3).strip() == "arun: canfar-widgets-loop"
    assert text(4).strip() == "async: ['notes']"
    assert text(5).strip() == "with: log line of abc12345"
    verbose = text(6)
    assert "── Session abc12345 ──" in verbose and "log line of abc12345" in verbose
    assert "\x1b[1;36m" in verbose  # coloured inside a kernel
    html = [o for o in nb.cells[7].outputs if o.get("output_type") == "display_data"]
    assert html and "https://example.org/session/notebook/abc12345" in html[0]["data"]["text/html"]
    text(8)


def test_an_interrupt_while_queueing_still_cancels_the_work(runner, monkeypatch):
    # Ctrl-C can land inside call_soon_threadsafe, after the work was queued: the work must
    # be cancelled, not left running unseen (a create would go unreported).
    runner.run(asyncio.sleep(0))  # start the loop
    loop = runner.loop
    finished = threading.Event()
    started = threading.Event()
    original = loop.call_soon_threadsafe

    def queue_then_interrupt(callback, *args, **kwargs):
        original(callback, *args, **kwargs)
        started.wait(5)  # the work is running on the loop by now
        raise KeyboardInterrupt

    cancelled_on: list[str] = []

    async def work():
        started.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:  # a real cancellation, on the runner's own thread
            cancelled_on.append(threading.current_thread().name)
            raise
        finished.set()

    monkeypatch.setattr(loop, "call_soon_threadsafe", queue_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run(work())
    monkeypatch.setattr(loop, "call_soon_threadsafe", original)
    runner.run(asyncio.sleep(0.4))
    assert started.is_set() and not finished.is_set()
    assert cancelled_on == [runner.name]
