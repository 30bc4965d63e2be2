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

Launch sessions with the form; the table below it updates by itself. Each row has buttons
to open a session (**Connect**), read its **Logs** and **Events**, **Renew** it, or
**Delete** it.
"""),
    code("""
from canfar_widgets import Dashboard

Dashboard(session=session)
"""),
    md("""
## From code, into the same table

Everything the form does is one call on the client. This headless job prints a line and
finishes; it shows up in the dashboard above while it runs.
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
# A batch job in replicas

One `create(..., replicas=N)` call starts N copies of the same headless job. Each copy gets
`REPLICA_ID` (1..N) and `REPLICA_COUNT` (N) in its environment, and
`canfar_widgets.helpers.chunk` (or `stripe`) turns those into that replica's share of the
inputs, exactly as `canfar.helpers.distributed` does.
"""),
    code("""
from canfar_widgets import Session
from canfar_widgets.helpers import chunk, stripe

session = Session()
inputs = [f"field-{n:02d}" for n in range(1, 11)]
REPLICAS = 4

# What each replica will process: contiguous chunks (the last one takes the remainder) ...
for replica in range(1, REPLICAS + 1):
    print(f"chunk  {replica}/{REPLICAS}:", list(chunk(inputs, replica, REPLICAS)))
# ... or every N-th item.
for replica in range(1, REPLICAS + 1):
    print(f"stripe {replica}/{REPLICAS}:", list(stripe(inputs, replica, REPLICAS)))
"""),
    md("""
## The job

The job is a small script. Inside a replica, `chunk(inputs)` with no replica numbers reads
`REPLICA_ID` and `REPLICA_COUNT` from the environment. The inputs travel in an environment
variable.

The local platform runs jobs as processes on this machine, so the job can use this
kernel's Python and the script's path. On CANFAR you would put the script in your home
(`/arc/home/<you>/`) and use an image's `python`.
"""),
    code('''
import sys
from pathlib import Path

script = Path("replica_job.py").resolve()
script.write_text("""\\
import os
from canfar_widgets.helpers import chunk

me, total = os.environ["REPLICA_ID"], os.environ["REPLICA_COUNT"]
for item in chunk(os.environ["INPUTS"].split(",")):
    print(f"replica {me}/{total} processed {item}")
""")

ids = session.create(
    "batch",
    image="images.canfar.net/skaha/python:3.12",
    cmd=sys.executable,
    args=str(script),
    env={"INPUTS": ",".join(inputs)},
    replicas=REPLICAS,
)
print(f"launched {len(ids)} replicas")
'''),
    md("""
## Watch them

`watch(ids)` shows the replicas' progress live; `.wait()` blocks until they have all
finished (the widget keeps updating meanwhile) and returns their final records.
"""),
    code("""
from canfar_widgets import watch

batch = watch(ids, session=session)
batch
"""),
    code("""
records = batch.wait(timeout=120)
print("statuses:", sorted({record.state for record in records}))
"""),
    md("""
## Collect the results

Every replica's log, by replica name; then check that each input was processed exactly once.
"""),
    code("""
names = {record.id: record.name for record in records}
logs = {names[key]: text for key, text in session.logs(ids).items()}

processed = {}
for name in sorted(logs):
    items = [line.rsplit(" ", 1)[-1] for line in logs[name].splitlines() if "processed" in line]
    processed[name] = items
    print(f"{name:<8} {len(items)} items: {', '.join(items)}")

done = [item for items in processed.values() for item in items]
assert sorted(done) == sorted(inputs), "some inputs were lost or processed twice"
print(f"all {len(inputs)} inputs processed once by {len(processed)} replicas")
"""),
    code("""
print("deleted:", sum(session.destroy(ids).values()))
script.unlink()
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
`errors="raise"` raises a typed error once every request has finished.
"""),
    code("""
from canfar_widgets.errors import NotFound

print("info of a missing id:", session.info("nosuchid0"))
try:
    session.info("nosuchid0", errors="raise")
except NotFound as err:
    print("raised:", type(err).__name__, err.status_code)
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
        kernelspec={"name": "python3", "display_name": "Python 3 (ipykernel)",
                    "language": "python"},
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
