"""What the batch tests against the local platform share: the image, the job script and
`launch`, which runs the script with this interpreter as a batch.

The job prints its replica's environment, sleeps ``SLEEP`` seconds, and raises
``ValueError`` on the replicas listed in ``FAIL`` (with the text of ``WHY``, by default
``bad frame <nnnn>``); with ``OUT`` set it writes
``out-<nn>.txt`` there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from canfar_widgets import Batch

IMAGE = "images.canfar.net/skaha/terminal:1.1.2"
JOB = """\
import os, sys, time
me, total = int(os.environ["REPLICA_ID"]), int(os.environ["REPLICA_COUNT"])
print(f"replica {me}/{total} name {os.environ['skaha_hostname']} mode {os.environ.get('MODE')}")
time.sleep(float(os.environ.get("SLEEP", "0")))
if str(me) in os.environ.get("FAIL", "").split(","):
    raise ValueError(os.environ.get("WHY", f"bad frame {me:04d}"))
if os.environ.get("OUT"):
    with open(os.path.join(os.environ["OUT"], f"out-{me:02d}.txt"), "w") as fh:
        fh.write(f"result of replica {me}\\n")
print("done")
"""


def launch(name: str, job: Path, session: Any, **kw: Any) -> Batch:
    """`Batch.launch` of the job script, in mode ``first`` unless ``env`` says otherwise."""
    env = {"MODE": "first", **kw.pop("env", {})}
    return Batch.launch(
        name, IMAGE, cmd=sys.executable, args=str(job), env=env, session=session, **kw
    )
