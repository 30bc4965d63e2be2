"""Interrupting a blocking wait says where it stood, in one line, and leaves the jobs running."""

from __future__ import annotations

import _thread
import asyncio
import os
import threading

import pytest
from support import wait_for

from canfar_widgets.local import LocalPlatform
from canfar_widgets.runner import Runner, WaitInterrupted, explain_interrupt

IMAGE = "images.canfar.net/skaha/terminal:1.1.2"

main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="interrupts reach the main thread",
)


def _interrupt_when(condition, timeout: float = 60) -> threading.Thread:
    """Deliver a KeyboardInterrupt to the main thread (as Ctrl-C does) once ``condition()``."""

    def run() -> None:
        wait_for(condition, timeout)
        _thread.interrupt_main()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def runner():
    r = Runner(name="test-interrupt")
    yield r
    r.shutdown()


@main_thread_only
def test_an_explained_wait_raises_wait_interrupted_with_its_line(runner):
    started = threading.Event()
    progress = {"done": 0}

    async def waits():
        with explain_interrupt(lambda: f"Interrupted: {progress['done']} of 3 finished."):
            progress["done"] = 1
            started.set()
            await asyncio.sleep(60)

    _interrupt_when(started.is_set)
    with pytest.raises(WaitInterrupted) as caught:
        runner.run(waits())
    assert str(caught.value) == "Interrupted: 1 of 3 finished."
    assert isinstance(caught.value, KeyboardInterrupt)  # `except KeyboardInterrupt` still works
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # raised from None
    assert caught.value._render_traceback_() == [
        "Interrupted: 1 of 3 finished."
    ]  # IPython shows this


@main_thread_only
def test_an_unexplained_wait_raises_a_plain_keyboard_interrupt(runner):
    started = threading.Event()

    async def waits():
        with explain_interrupt(lambda: "inner, already left"):
            pass
        started.set()
        await asyncio.sleep(60)

    _interrupt_when(started.is_set)
    with pytest.raises(KeyboardInterrupt) as caught:
        runner.run(waits())
    assert type(caught.value) is KeyboardInterrupt


def test_explain_interrupt_outside_run_does_nothing(runner):
    async def main():
        with explain_interrupt(lambda: "unused"):
            return await runner.arun(asyncio.sleep(0, result="fine"))

    assert asyncio.run(main()) == "fine"


@main_thread_only
@pytest.mark.timeout(120)
def test_session_wait_interrupted_says_how_many_finished(clean_home):
    with LocalPlatform(headless_start_delay=0.0) as platform:
        session = platform.session()
        [short] = session.create(name="short", image=IMAGE, cmd="true")
        [long] = session.create(name="long", image=IMAGE, cmd="sleep", args="60")
        polls: dict[str, int] = {}

        def counted_after_short_ended() -> bool:
            # Two polls of the long job after the short one ended: the wait has seen it end.
            if "mark" not in polls:
                states = {s["id"]: s["status"] for s in platform.sessions()}
                if states.get(short) != "Completed":
                    return False
                polls["mark"] = platform.request_count("GET", f"session/{long}")
            return platform.request_count("GET", f"session/{long}") >= polls["mark"] + 2

        _interrupt_when(counted_after_short_ended)
        with pytest.raises(WaitInterrupted) as caught:
            session.wait([short, long], until="finished", timeout=100, interval=0.2)
        states = {s["id"]: s["status"] for s in platform.sessions()}
        session.close()

    assert str(caught.value) == "Interrupted: 1 of 2 finished; the sessions keep running."
    assert states[long] == "Running"  # an interrupt stops the waiting, never the jobs


@main_thread_only
@pytest.mark.timeout(120)
def test_batch_wait_interrupted_says_how_many_finished(fresh_widgets):
    pytest.importorskip("anywidget")
    from canfar_widgets import watch

    with LocalPlatform(headless_start_delay=0.0) as platform:
        session = platform.session()
        ids = session.create(name="short", image=IMAGE, cmd="true") + session.create(
            name="long", image=IMAGE, cmd="sleep", args="60"
        )
        batch = watch(ids, session=session)
        # Once the wait runs and the feed saw the short job end.
        _interrupt_when(lambda: batch._waiters > 0 and batch.done == 1)
        with pytest.raises(WaitInterrupted) as caught:
            batch.wait(timeout=100)
        batch.close()
        session.close()

    assert str(caught.value) == "Interrupted: 1 of 2 finished; the jobs keep running."


@pytest.mark.notebook
@pytest.mark.timeout(180)
def test_interrupting_session_wait_in_a_kernel_shows_one_line(clean_home):
    pytest.importorskip("ipykernel")
    from kernel_driver import KernelDriver

    with LocalPlatform(headless_start_delay=0.0) as platform:
        env = {
            k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR_", "SKAHA_"))
        }
        env.update(CANFAR_URL=platform.url, CANFAR_TOKEN=platform.token, HOME=str(clean_home))
        with KernelDriver(env) as kernel:
            kernel.run(f"""
                from canfar_widgets import Session
                session = Session()
                ids = (session.create(name="a", image={IMAGE!r}, cmd="sleep", args="60")
                       + session.create(name="b", image={IMAGE!r}, cmd="sleep", args="60"))
            """)
            first = next(s["id"] for s in platform.sessions() if s["name"] == "a")
            waiting = kernel.start("""
                print("waiting", flush=True)
                session.wait(ids, until="finished", timeout=150, interval=0.2)
            """)
            waiting.read_until(lambda m: waiting.printed("waiting"))
            before = platform.request_count("GET", f"session/{first}")
            # Two polls: the cell is inside the wait's loop, not still starting it.
            wait_for(lambda: platform.request_count("GET", f"session/{first}") >= before + 2, 60)
            kernel.manager.interrupt_kernel()
            waiting.finish()
            after = kernel.run("print(sorted(r['status'] for r in session.info(ids)))")
        assert waiting.errors() == [
            {
                "ename": "WaitInterrupted",
                "evalue": "Interrupted: 0 of 2 finished; the sessions keep running.",
                "traceback": ["Interrupted: 0 of 2 finished; the sessions keep running."],
            }
        ]
        assert after.stdout().strip() == "['Running', 'Running']"
