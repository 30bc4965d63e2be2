"""Storage and job environment: /arc as on CANFAR, HOME, the platform's Python, --image."""

from __future__ import annotations

import os
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import support
from support import FAST_PLATFORM

from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.storage import Storage, find_bwrap

pytestmark = pytest.mark.timeout(90)

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
ASTROML = "images.canfar.net/skaha/astroml:latest"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FAST = {**FAST_PLATFORM, "kill_grace": 0.3}

needs_bwrap = pytest.mark.skipif(
    find_bwrap() is None, reason="bubblewrap (/usr/bin/bwrap) is not installed: .ci/run installs it"
)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    with LocalPlatform(arc=tmp_path / "arc", **FAST) as p:
        yield p


def run(platform: LocalPlatform, *, image: str = TERMINAL, **params: str) -> tuple[str, str]:
    """Create a headless job, wait until it finished: (status, logs)."""
    headers = {"Authorization": f"Bearer {platform.token}", **FORM}
    with httpx.Client(base_url=platform.url + "/", headers=headers) as http:
        r = http.post("session", params={"name": "job", "image": image, **params})
        assert r.status_code == 200, r.text
        sid = r.text.strip()

        def finished() -> str | None:
            status = http.get(f"session/{sid}").json()["status"]
            return status if status in ("Completed", "Failed") else None

        status = support.wait_for(finished, 30)
        return status, http.get(f"session/{sid}", params={"view": "logs"}).text


def sh(script: str) -> dict[str, str]:
    # cmd is one argv element and args split on single spaces: the script goes in a file
    return {"cmd": "/bin/sh", "args": script}


def write_script(folder: Path, body: str) -> str:
    path = folder / "job.sh"
    path.write_text(body)
    return str(path)


@needs_bwrap
def test_job_writes_arc_and_home_and_the_notebook_reads_them(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    assert platform.storage is not None and platform.storage.mounted, platform.storage
    script = write_script(
        tmp_path,
        "mkdir -p /arc/projects/p\n"
        "echo result > /arc/projects/p/out.txt\n"
        "echo mine > ~/x\n"
        "echo relative > rel.txt\n"
        "pwd; echo $HOME\n",
    )
    status, logs = run(platform, **sh(script))
    assert status == "Completed", logs
    home = f"/arc/home/{platform.username}"
    assert logs.splitlines() == [home, home]  # working directory = HOME, as on CANFAR
    assert (platform.arc / "projects" / "p" / "out.txt").read_text() == "result\n"
    assert (platform.arc / "home" / platform.username / "x").read_text() == "mine\n"
    assert (platform.arc / "home" / platform.username / "rel.txt").read_text() == "relative\n"
    stats = httpx.get(
        f"{platform.url}/session",
        params={"view": "stats"},
        headers={"Authorization": f"Bearer {platform.token}"},
    )
    assert "x-local-storage" not in stats.headers  # nothing to warn about


@needs_bwrap
def test_the_rest_of_the_host_stays_visible(platform: LocalPlatform, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    status, logs = run(platform, cmd="cat", args=str(outside))
    assert (status, logs) == ("Completed", "host file\n")


@needs_bwrap
def test_a_command_on_arc_runs(platform: LocalPlatform) -> None:
    tool = platform.arc / "projects" / "tools" / "hello.sh"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho hello from arc\n")
    tool.chmod(0o755)
    assert run(platform, cmd="/arc/projects/tools/hello.sh") == ("Completed", "hello from arc\n")
    status, logs = run(platform, cmd="/arc/projects/tools/missing.sh")
    assert status == "Failed"
    assert "stat /arc/projects/tools/missing.sh: no such file or directory" in logs


def test_without_a_mount_home_is_under_the_storage_root(tmp_path: Path) -> None:
    with LocalPlatform(arc=tmp_path / "arc", mount_arc=False, **FAST) as p:
        assert p.storage is not None and not p.storage.mounted
        assert p.storage.note  # says why
        status, logs = run(p, **sh(write_script(tmp_path, "pwd; echo $HOME; echo x > ~/x\n")))
        home = str(tmp_path.resolve() / "arc" / "home" / p.username)
        assert (status, logs.splitlines()) == ("Completed", [home, home])
        assert (tmp_path / "arc" / "home" / p.username / "x").read_text() == "x\n"
        # view=stats says so in a header (its JSON keeps the server's schema)
        stats = httpx.get(
            f"{p.url}/session",
            params={"view": "stats"},
            headers={"Authorization": f"Bearer {p.token}"},
        )
        assert list(stats.json()) == ["cores", "ram"]
        assert stats.headers["x-local-storage"] == f"no /arc for jobs: {p.storage.note}"


def test_storage_root_layout_and_default(tmp_path: Path) -> None:
    storage = Storage.prepare(tmp_path / "root", mount=False)
    assert (tmp_path / "root" / "home").is_dir() and (tmp_path / "root" / "projects").is_dir()
    assert storage.job_home("alice") == str(tmp_path.resolve() / "root" / "home" / "alice")
    from canfar_widgets.local.platform import default_arc

    assert LocalPlatform().arc == default_arc()
    assert default_arc().name == "arc" and "canfar-widgets" in str(default_arc())


def test_python_in_a_job_is_the_platforms_interpreter(platform: LocalPlatform) -> None:
    status, logs = run(platform, cmd="python", args="-c print(__import__('sys').executable)")
    assert status == "Completed", logs
    assert logs.strip() == sys.executable


def test_image_maps_to_a_local_environment(tmp_path: Path) -> None:
    prefix = tmp_path / "astro-env"
    venv.create(prefix, with_pip=False, symlinks=True)
    marker = prefix / "bin" / "which-env"
    marker.write_text("#!/bin/sh\necho astro-env\n")
    marker.chmod(0o755)
    with LocalPlatform(arc=tmp_path / "arc", image_environments={ASTROML: prefix}, **FAST) as p:
        status, logs = run(p, image=ASTROML, cmd="which-env")
        assert (status, logs) == ("Completed", "astro-env\n")
        status, logs = run(
            p, image=ASTROML, cmd="python", args="-c print(__import__('sys').prefix)"
        )
        assert (status, logs.strip()) == ("Completed", str(prefix.resolve()))
        # other images keep the platform's environment
        status, logs = run(p, cmd="which-env")
        assert status == "Failed" and "executable file not found in $PATH" in logs


def test_image_environment_matches_without_tag(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    tool = prefix / "bin" / "which-env"
    tool.write_text("#!/bin/sh\necho tagless\n")
    tool.chmod(0o755)
    with LocalPlatform(
        arc=tmp_path / "arc", image_environments={"images.canfar.net/skaha/astroml": prefix}, **FAST
    ) as p:
        assert run(p, image=ASTROML, cmd="which-env") == ("Completed", "tagless\n")
        assert p.settings.environment_for(TERMINAL) is None


def test_image_environment_must_be_a_prefix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no bin folder"):
        LocalPlatform(image_environments={ASTROML: tmp_path / "nope"})


def test_cli_runtime_options(tmp_path: Path) -> None:
    import argparse

    from canfar_widgets.local import cli

    assert cli.image_environments([f"{ASTROML}=/opt/env"]) == {ASTROML: "/opt/env"}
    with pytest.raises(ValueError, match="IMAGE=PREFIX"):
        cli.image_environments(["no-equals-sign"])
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--arc",
            str(tmp_path / "a"),
            "--cores",
            "3",
            "--ram",
            "5",
            "--image",
            f"{ASTROML}={env}",
            "--no-arc-mount",
            "--pull-failure",
            TERMINAL,
            "--unschedulable",
            "--idle-timeout",
            "7",
        ]
    )
    p = cli.build_platform(args)
    assert p.arc == (tmp_path / "a").resolve() and not p.mount_arc
    assert (p.settings.cores, p.settings.ram) == (3.0, 5.0)
    assert p.settings.environment_for(ASTROML) == str(env.resolve())
    assert p.faults.pull_failures == (TERMINAL,) and p.faults.unschedulable
    assert p.idle_timeout == 7.0
    token_file = tmp_path / "token"
    token_file.write_text("from-file\nignored\n")
    args = parser.parse_args(["--token-file", str(token_file)])
    assert cli.read_token(args, {"CANFAR_LOCAL_TOKEN": "from-env"}) == "from-file"
    args = parser.parse_args([])
    assert cli.read_token(args, {"CANFAR_LOCAL_TOKEN": "from-env"}) == "from-env"
    assert cli.read_token(args, {}) is None


@needs_bwrap
def test_bwrap_mount_works_for_an_ordinary_user(tmp_path: Path) -> None:
    """The namespace recipe needs no privilege (CI runs as root, so try a plain user too)."""
    import shutil
    import tempfile

    # pytest's tmp_path is private to root: use a folder another user can reach
    top = Path(tempfile.mkdtemp(prefix="canfar-arc-user-"))
    root = top / "plain-arc"
    Storage.prepare(root, mount=False)
    for folder in (top, root, root / "home"):
        os.chmod(folder, 0o777)
    try:
        _run_as_plain_user(root)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run_as_plain_user(root: Path) -> None:
    import shutil
    import subprocess

    bwrap = find_bwrap()
    assert bwrap is not None
    argv = Storage(root.resolve(), bwrap).wrap(
        ["/bin/sh", "-c", "echo ok > /arc/home/out.txt; pwd; id -u"], cwd="/arc/home"
    )
    if os.getuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is missing: cannot try as an ordinary user")
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["/arc/home", "65534" if os.getuid() == 0 else str(os.getuid())]
    assert (root / "home" / "out.txt").read_text() == "ok\n"


def test_python_resolves_to_the_interpreter_even_without_a_python_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter installed as ``python3.11`` only (no ``python`` in its folder)."""
    real = os.path.realpath(sys.executable)
    lone = tmp_path / "interp" / "python3-only"
    lone.parent.mkdir()
    lone.symlink_to(real)
    monkeypatch.setattr(sys, "executable", str(lone))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no other `python` to fall back on
    with LocalPlatform(arc=tmp_path / "arc", **FAST) as p:
        code = "-c print(__import__('os').path.realpath(__import__('sys').executable))"
        status, logs = run(p, cmd="python", args=code)
    assert (status, logs.strip()) == ("Completed", real)
