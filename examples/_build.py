"""Write the example notebooks from the cell sources below (committed without outputs).

Edit the cells here, then run ``python examples/_build.py``; ``--check`` exits non-zero if
a committed notebook differs from what this script writes (the tests use it).

Every example runs unmodified against whatever ``Session()`` finds: under
``canfar-widgets demo`` (or the tests) that is the local platform, through ``CANFAR_URL``
and ``CANFAR_TOKEN``; on CANFAR it is your login. No URL or token appears in a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text.strip("\n"))


QUICKSTART = [
    md("""
# canfar-widgets: quickstart

Launch, watch, open and delete CANFAR sessions without leaving the notebook.

`Session()` finds the platform by itself: under `canfar-widgets demo` it is the local
platform on this machine (through `CANFAR_URL` and `CANFAR_TOKEN`); on CANFAR it is your
login (`canfar auth login`).
"""),
    code("""
from canfar_widgets import Session

session = Session()
print("platform:", session.url)
"""),
    md("""
## The dashboard

Launch sessions with the **Launch a session** form; **Platform load** beside it shows how
busy the platform is, and the **Sessions** table below updates by itself (every 2 s while
a session starts, stops or was just launched, less often when all is quiet). Each row has icon
buttons (hover one for its name): **Connect to** the session, its **Logs** and
**Events** (opened under the table), **Renew** or **Keep alive** an interactive session,
and **Delete**; in a narrow window the less used ones move into the row's **More
actions** menu. Finished jobs stay listed (**Hide finished** is off); tick it to hide them.
"""),
    code("""
from canfar_widgets import Dashboard

Dashboard(session=session)
"""),
    md("""
## From code, into the same table

Everything the form does is one call on the client. This headless job prints a line and
finishes within seconds: a launch from this kernel makes the table above poll fast for a
minute, so it appears there (by its name, `hello`) as Pending, Running, then Completed,
and stays listed. `session.wait` blocks this cell until it finishes; the widgets keep
updating meanwhile.
"""),
    code("""
ids = session.create(
    "hello",
    image="images.canfar.net/skaha/terminal:1.1.2",
    cmd="echo",
    args="Hello from canfar-widgets",
)
[record] = session.wait(ids, until="finished", timeout=120)
print("status:", record["status"])
print("log:", session.logs(ids)[ids[0]].strip())
"""),
    md("""
Next: [batch-replicas.ipynb](batch-replicas.ipynb) runs a job as many replicas that split
their inputs; [client-api.ipynb](client-api.ipynb) tours every client call, sync and async.
"""),
]


BATCH = [
    md("""
# A batch job in replicas: launch, watch, triage, re-run, collect

`Batch.launch(..., replicas=N)` starts N copies of one headless job, exactly as
`session.create` does, and keeps a record of them on this machine: each replica's status,
attempts, why it failed, and its logs once it finished. The record outlives this kernel
and the platform's own cleanup, so `Batch.open(name)` finds the batch again later.

Each copy gets `REPLICA_ID` (1..N) and `REPLICA_COUNT` (N) in its environment;
`canfar_widgets.helpers.chunk` (or `stripe`) turns those into that replica's share of the
inputs, exactly as `canfar.helpers.distributed` does.
"""),
    code("""
from canfar_widgets import Batch, Session
from canfar_widgets.helpers import chunk

session = Session()
frames = [f"frame-{n:03d}" for n in range(1, 25)]
bad = ["frame-005", "frame-011", "frame-016", "frame-022"]  # four frames with a broken header
REPLICAS = 12

# What the first replicas will process: contiguous chunks (the last takes the remainder).
for replica in range(1, 4):
    print(f"chunk {replica}/{REPLICAS}:", list(chunk(frames, replica, REPLICAS)))
"""),
    md("""
## The job

A small source-detection script: each replica takes its chunk of the frames and writes one
`sources-<nn>.csv`. A broken frame makes it raise, unless `REPAIR=1` is set.

The local platform runs jobs as processes on this machine, so the job can use this
kernel's Python, and the results go to a folder next to the notebook. On CANFAR you would
put the script in your home (`/arc/home/<you>/`), use an image's `python`, and write the
results under `/arc/projects/<project>/`.
"""),
    code('''
import shutil
import sys
from pathlib import Path

results = Path("detect-results").resolve()
shutil.rmtree(results, ignore_errors=True)
results.mkdir()
script = Path("detect_sources.py").resolve()
script.write_text("""\\
import os
from pathlib import Path
from canfar_widgets.helpers import chunk

me = int(os.environ["REPLICA_ID"])
bad = os.environ["BAD_FRAMES"].split(",")
done = []
for frame in chunk(os.environ["FRAMES"].split(",")):
    if frame in bad and os.environ.get("REPAIR") != "1":
        raise ValueError(f"{frame}: NaN in header")
    done.append(frame)
    print(f"replica {me} processed {frame}")
Path(os.environ["RESULTS"], f"sources-{me:02d}.csv").write_text("\\\\n".join(done) + "\\\\n")
""")

batch = Batch.launch(
    "detect",
    "images.canfar.net/skaha/python:3.12",
    cmd=sys.executable,
    args=str(script),
    env={"FRAMES": ",".join(frames), "BAD_FRAMES": ",".join(bad), "RESULTS": str(results)},
    replicas=REPLICAS,
)
print(f"launched {batch.total} replicas")
'''),
    md("""
## Watch it

`batch.refresh()` asks the platform once (one request for the whole batch, however many
replicas) and `batch.counts` says how many replicas are in each state. `batch.wait()`
does the same until every replica has finished; Ctrl-C stops the waiting, not the jobs.
`watch()` shows the same sessions live in a widget.
"""),
    code("""
import time

seen = None
while True:
    batch.refresh()
    if batch.counts != seen:
        seen = batch.counts
        print("counts:", seen)
    if batch.finished:
        break
    time.sleep(1)
print(f"completed: {len(batch.done)}, failed: {len(batch.failed)}")
"""),
    code("""
from canfar_widgets import watch

watch([replica.id for replica in batch.replicas], session=session)
"""),
    md("""
## Triage

`batch.errors()` has one row per failed replica: its attempt, the reason in words (a
non-zero exit, out of memory, an image pull failure, cannot be scheduled, past its
deadline, deleted) and the last error line of its log.
"""),
    code("""
for row in batch.errors():
    print(f"replica {row.replica:>2}  attempt {row.attempt}  {row.reason}:  {row.last_line}")
"""),
    md("""
## Re-run the failures

`batch.rerun()` re-launches the failed replicas as themselves: the same name
(`detect-<n>`), the same `REPLICA_ID` and `REPLICA_COUNT`, the same spec, with the
changes given (here one more environment variable). `retries=N` on `launch` does this
automatically.
"""),
    code("""
again = batch.rerun(env={"REPAIR": "1"})
print("re-running:", [replica.name for replica in again])
batch.wait(timeout=300)
print("after the re-run:", batch.counts)
print("attempts:", {replica.replica: replica.attempt for replica in batch.replicas if replica.attempt > 1})
"""),
    md("""
## Collect the results

`batch.outputs(pattern)` finds each replica's files (`{replica}` takes a format spec) and
lists the replicas that wrote none. On CANFAR a pattern under `/arc` works from any
session; next to a local platform `/arc` is its storage folder.
"""),
    code("""
outputs = batch.outputs(str(results / "sources-{replica:02d}.csv"))
print(f"outputs: {len(outputs.files)} files, missing: {outputs.missing}")

logs = batch.logs()
processed = {}
for replica in batch.replicas:
    items = [line.rsplit(" ", 1)[-1] for line in logs[replica.replica].splitlines()
             if "processed" in line]
    processed[replica.name] = items
    print(f"{replica.name:<9} {len(items)} frames: {', '.join(items)}")

done = [item for items in processed.values() for item in items]
assert sorted(done) == sorted(frames), "some frames were lost or processed twice"
print(f"all {len(frames)} frames processed once by {len(processed)} replicas")
"""),
    md("""
## What it used

Wall time, attempts and the requested core-hours and RAM-GB-hours, per replica and in
total (a flexible session counts the platform's default request, and says so).
"""),
    code("""
usage = batch.usage()
print(usage)
print("attempts in total:", usage.attempts)
"""),
    md("""
## Clean up, and come back later

`batch.destroy()` archives every replica's logs and events, then deletes its sessions.
The record stays: in a new kernel (or tomorrow), `Batch.open("detect")` gives the same
replicas, states, attempts and logs. From a terminal: `canfar-widgets batch list`,
`batch show detect`, `batch logs detect --replica 3`.
"""),
    code("""
print("deleted:", sum(batch.destroy().values()))

reopened = Batch.open("detect")
print("re-opened:", reopened.counts)
print("attempts:", [replica.attempt for replica in reopened.replicas])
print("archived log of replica 3:", reopened.logs([3])[3].splitlines()[-1])
script.unlink()
shutil.rmtree(results)
"""),
]


CLIENT_API = [
    md("""
# The client API

`Session` (plain code) and `AsyncSession` (`await`) have the documented methods of the
official `canfar` client (1.5.x) with the same signatures, plus `wait`, `images`,
`context` and `renew`. See `docs/client-api.md` for the differences.
"""),
    md("## Platform"),
    code("""
from canfar_widgets import Session

session = Session()
context = session.context()
print("core options:", context.cores.options[:6], "...")
print("headless images:", [image.id for image in session.images("headless")][:3])
print("stats keys:", sorted(session.stats()))
"""),
    md("""
## Headless jobs: create, wait, fetch, info, logs, events

`create` returns the new ids (one per replica, launched concurrently). `wait` polls until
they are `Running` or, with `until="finished"`, `Completed`/`Failed`.
"""),
    code("""
ids = session.create(
    "api-demo",
    image="images.canfar.net/skaha/terminal:1.1.2",
    cmd="echo",
    args="hello from the client API",
    replicas=2,
)
print("created:", len(ids))
records = session.wait(ids, until="finished", timeout=120)
print("statuses:", [record["status"] for record in records])
"""),
    code("""
from canfar_widgets.models import parse_events

mine = [item for item in session.fetch(kind="headless") if item["id"] in ids]
print("fetched:", sorted(item["name"] for item in mine))
print("info:", [(record["name"], record["status"]) for record in session.info(ids)])
print("logs:", sorted({text.strip() for text in session.logs(ids).values()}))
# events: one {id: kubectl-style table} per id; parse_events reads the table.
for item in session.events(ids):
    for key, table in item.items():
        print("last event:", key in ids, parse_events(table)[-1].reason)
"""),
    md("`verbose=True` prints instead of returning (and returns `None`):"),
    code("""
session.logs(ids[0], verbose=True)
"""),
    md("""
## Failures

By default a failed item is left out and logged (`errors="ignore"`, as `canfar`);
`errors="raise"` raises `SessionRequestError` once every request has finished, as
`canfar` does: `results` holds what did work, `errors` each failed id's typed error (the
exception is also an instance of the first one's class, so `except NotFound` works too).
"""),
    code("""
from canfar_widgets import SessionRequestError

print("info of a missing id:", session.info("nosuchid0"))
try:
    session.info("nosuchid0", errors="raise")
except SessionRequestError as err:
    print("raised:", type(err.errors["nosuchid0"]).__name__, err.status_code)
"""),
    md("""
## Interactive sessions: connect and renew

`connect` shows a link in Jupyter (it would open a browser tab in a script); `renew`
pushes back the expiry.
"""),
    code("""
nb = session.create("api-notebook", image="images.canfar.net/skaha/astroml-notebook:latest",
                    kind="notebook")
[record] = session.wait(nb, until="Running", timeout=120)
print("notebook:", record["status"])
session.connect(nb)
print("renewed:", session.renew(nb))
"""),
    md("## Cleaning up"),
    code("""
print("destroy_with:", sorted(session.destroy_with("api-demo", kind="headless",
                                                   status="Completed").values()))
print("destroy:", session.destroy(nb) == {nb[0]: True})
"""),
    md("""
## The same with `AsyncSession`

In a notebook, `await` works at the top level of a cell. Independent calls can run at the
same time with `asyncio.gather`.
"""),
    code("""
import asyncio

from canfar_widgets import AsyncSession

async with AsyncSession() as asession:
    ids = await asession.create("async-demo", image="images.canfar.net/skaha/terminal:1.1.2",
                                cmd="echo", args="hello from async", replicas=3)
    records, stats = await asyncio.gather(asession.wait(ids, until="finished", timeout=120),
                                          asession.stats())
    logs = await asession.logs(ids)
    print("async statuses:", [record["status"] for record in records])
    print("async logs:", sorted({text.strip() for text in logs.values()}))
    print("async destroy:", all((await asession.destroy(ids)).values()))
"""),
]


NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "batch-replicas.ipynb": BATCH,
    "client-api.ipynb": CLIENT_API,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        kernelspec={
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        },
        language_info={"name": "python"},
    )
    nb.cells = NOTEBOOKS[name]
    # Stable ids, so rebuilding does not churn the committed files.
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem}-{number}"
    return nb


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        text = nbformat.writes(build(name)) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python examples/_build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
