"""Keep-alive: renew interactive sessions while less than the margin is left, up to a chosen time.

On the local platform with a 3 s session expiry, a notebook kept alive for 5 s outlives
its first deadline, is renewed, and is no longer renewed after the chosen time (so it
then expires); headless jobs are skipped; bad input is refused in plain words.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from widget_fakes import send, wait_until

from canfar_widgets.keep_alive import KeepAlive
from canfar_widgets.widgets.session_table import SessionTable

pytestmark = pytest.mark.usefixtures("fresh_widgets")
NOTEBOOK = "images.canfar.net/skaha/astroml-notebook:latest"
TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"


def test_keep_alive_renews_and_stops_at_the_chosen_time():
    from canfar_widgets.local import LocalPlatform

    with LocalPlatform(start_delay=0.2, session_expiry=3, terminating_delay=0.1) as platform:
        session = platform.session()
        table = SessionTable(session)
        try:
            [nb] = session.create("ka-nb", image=NOTEBOOK, kind="notebook")
            [job] = session.create("ka-job", image=TERMINAL, cmd="sleep", args="60")
            session.wait([nb, job], until="Running", timeout=20)
            until = time.time() + 5
            keeper = table.keep_alive([nb, job], until=until, check_every=0.5)
            assert keeper is not None and keeper.active
            assert table.kept_alive == {nb: keeper.until, job: keeper.until}
            # Past the first 3 s deadline, the notebook still runs: it was renewed.
            time.sleep(4)
            [record] = session.info(nb)
            assert record["status"] == "Running"
            assert keeper.renewals[nb] >= 2
            assert keeper.skipped == {job: "headless"} and keeper.renewals[job] == 0
            # At the chosen time it stops by itself, and the table no longer lists it.
            assert keeper.wait(timeout=5)
            assert not keeper.active
            assert wait_until(lambda: table.kept_alive == {})
            renews = platform.request_count("POST", f"session/{nb}")
            # Not renewed after `until`: the session reaches its deadline and ends.
            assert wait_until(lambda: session.info(nb)[0]["status"] != "Running", timeout=8)
            assert platform.request_count("POST", f"session/{nb}") == renews
        finally:
            table.close()
            session.close()


def test_the_table_stops_a_keep_alive_on_request_and_on_close(monkeypatch):
    from canfar_widgets.local import LocalPlatform

    with LocalPlatform(start_delay=0.1) as platform:
        session = platform.session()
        table = SessionTable(session)
        try:
            [nb] = session.create("ka-stop", image=NOTEBOOK, kind="notebook")
            send(table, kind="keep_alive", ids=[nb], until=time.time() + 3600)
            assert set(table.kept_alive) == {nb}
            keeper = table._keepers[nb]
            assert keeper.active
            send(table, kind="keep_alive", ids=[nb], until=None)  # "Stop keeping alive"
            assert table.kept_alive == {} and keeper.wait(timeout=5) and not keeper.active
            again = table.keep_alive(nb, until=datetime.now(timezone.utc) + timedelta(hours=2))
            assert again is not None and again.active
            table.close()
            assert again.wait(timeout=5) and not again.active
        finally:
            table.close()
            session.close()


def test_bad_input_is_refused_in_plain_words():
    async def info(ids):
        return []

    async def renew(ids):
        return {}

    with pytest.raises(ValueError, match=r"until: .* must be in the future"):
        KeepAlive(["a"], until=time.time() - 1, info=info, renew=renew)
    with pytest.raises(ValueError, match="ids: give at least one"):
        KeepAlive([], until=time.time() + 60, info=info, renew=renew)
    with pytest.raises(TypeError, match="until must be a datetime"):
        KeepAlive(["a"], until="tomorrow", info=info, renew=renew)  # type: ignore[arg-type]
    keeper = KeepAlive("a", until=time.time() + 60, info=info, renew=renew)
    assert "1 session(s) until" in repr(keeper) and "stopped" in repr(keeper)
    keeper.start()
    assert keeper.wait(timeout=5)  # nothing found to keep alive: it ends by itself
    assert keeper.skipped == {"a": "not found"}


def test_session_keep_alive_sync_and_async():
    """``Session.keep_alive`` / ``AsyncSession.keep_alive``: the same task, from the client."""
    import asyncio

    from canfar_widgets import AsyncSession
    from canfar_widgets.local import LocalPlatform

    with LocalPlatform(start_delay=0.2, session_expiry=3) as platform:
        session = platform.session()
        try:
            [nb] = session.create("ka-client", image=NOTEBOOK, kind="notebook")
            session.wait([nb], until="Running", timeout=20)

            async def from_async_code() -> KeepAlive:
                async with AsyncSession(url=platform.url, token=platform.token) as client:
                    keeper = await client.keep_alive([nb], until=time.time() + 60, check_every=0.5)
                    await asyncio.sleep(1.2)
                    keeper.stop()
                    return keeper

            done = asyncio.run(from_async_code())
            assert done.wait(timeout=5) and not done.active and done.renewals[nb] >= 1

            keeper = session.keep_alive(nb, until=time.time() + 4, check_every=0.5)
            assert isinstance(keeper, KeepAlive) and keeper.active
            assert keeper.wait(timeout=10) and keeper.renewals[nb] >= 2
            renews = platform.request_count("POST", f"session/{nb}")
            time.sleep(1.5)
            assert platform.request_count("POST", f"session/{nb}") == renews  # stopped at `until`
        finally:
            session.close()
