"""Batch hooks' dispatch (canfar_widgets.batches._hooks), without a platform: which thread
runs a callback, that each event is handed out once, and re-entrancy."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from canfar_widgets.batches._hooks import Hooks


def replica(number: int, attempt: int = 1) -> SimpleNamespace:
    return SimpleNamespace(replica=number, attempt=attempt)


def test_queued_events_run_only_on_the_owner_thread_once():
    hooks = Hooks()
    seen: list[tuple[str, str]] = []
    hooks.add(
        "failed",
        lambda r: seen.append((f"{r.replica}/{r.attempt}", threading.current_thread().name)),
    )
    hooks.add("finished", lambda b: seen.append((b, threading.current_thread().name)))
    worker = threading.Thread(
        target=lambda: (hooks.note([replica(2)], False, "batch"), hooks.drain()), name="runner"
    )
    worker.start()
    worker.join()
    assert seen == [] and hooks.queued()  # noted on the runner, never run there
    hooks.drain()
    hooks.drain()
    main = threading.current_thread().name
    assert seen == [("2/1", main)]
    hooks.note([replica(2)], True, "batch")  # same failure again: not news; the finish is
    hooks.note([replica(2)], True, "batch")
    hooks.drain()
    assert seen == [("2/1", main), ("batch", main)]
    hooks.note([replica(2, 2)], False, "batch")  # a re-run: a new attempt failed, unfinished
    hooks.note([replica(2, 2)], True, "batch")  # ...and finished again
    hooks.drain()
    assert seen[2:] == [("2/2", main), ("batch", main)]


def test_registered_inside_a_running_loop_runs_on_that_loop():
    ran: list[bool] = []

    async def main() -> None:
        hooks = Hooks()
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def finished(_batch: object) -> None:
            ran.append(asyncio.get_running_loop() is loop)
            done.set()

        hooks.add("finished", finished)
        threading.Thread(target=hooks.note, args=([], True, "b")).start()
        await asyncio.wait_for(done.wait(), 10)

    asyncio.run(main())
    assert ran == [True]


def test_a_closed_loop_leaves_the_events_for_drain():
    hooks = Hooks()
    seen: list[object] = []

    async def register() -> None:
        hooks.add("finished", seen.append)

    asyncio.run(register())  # that loop is closed now
    hooks.note([], True, "b")
    assert seen == [] and hooks.queued()
    hooks.drain()
    assert seen == ["b"]


def test_a_callback_that_refreshes_does_not_run_the_queue_inside_itself():
    hooks = Hooks()
    order: list[str] = []

    def first(r: SimpleNamespace) -> None:
        order.append(f"start {r.replica}")
        hooks.drain()  # what a batch.refresh() inside a callback does
        order.append(f"end {r.replica}")

    hooks.add("failed", first)
    hooks.note([replica(1), replica(2)], False, "b")
    hooks.drain()
    assert order == ["start 1", "end 1", "start 2", "end 2"]
