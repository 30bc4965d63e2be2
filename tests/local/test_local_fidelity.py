"""The real skaha server's quirks, as the local platform reproduces them (one test each).

Each behaviour is listed in docs/local-platform.md ("Fidelity", with the server's file), checked
through real HTTP: exact status, body, content type and headers. The dangerous ones first:
what the server refuses must be refused here too, so a dry run does not give false confidence.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from local_support import FORM, TERMINAL
from support import wait_for

from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.formats import gson_pretty

pytestmark = pytest.mark.timeout(60)

ASTROML = "images.canfar.net/skaha/astroml:latest"
DESKTOP = "images.canfar.net/skaha/desktop:1.2.1"
PRIVATE = "images.canfar.net/private/thing:1.0"
SERVER = "OpenCADC/cadc-rest"


def create(client: httpx.Client, **params: Any) -> httpx.Response:
    params.setdefault("name", "job")
    params.setdefault("image", TERMINAL)
    return client.post("session", params=params, headers=FORM)


def create_ok(client: httpx.Client, **params: Any) -> str:
    r = create(client, **params)
    assert r.status_code == 200, r.text
    return r.text.strip()


def assert_text(r: httpx.Response, status: int, text: str) -> None:
    assert (r.status_code, r.text) == (status, text)
    assert r.headers["content-type"] == "text/plain"


def finished_log(client: httpx.Client, sid: str) -> str:
    wait_for(lambda: client.get(f"session/{sid}").json()["status"] in ("Completed", "Failed"))
    return client.get(f"session/{sid}", params={"view": "logs"}).text


def nothing_created(client: httpx.Client, platform: LocalPlatform) -> bool:
    return client.get("session").json() == [] and platform.sessions() == []


# ------------------------------------------------------------- refused on CANFAR (major)


@pytest.mark.parametrize(
    "params",
    [
        {"cmd": "echo", "args": "$HOME"},
        {"cmd": "bash", "args": "-c echo$SLURM_JOB_ID"},
        {"cmd": "$SHELL"},
        {"cmd": "env", "env": "PATTERN=a$b"},
    ],
)
def test_dollar_in_cmd_args_or_env_is_illegal_group_reference(
    client: httpx.Client, platform: LocalPlatform, params: dict[str, str]
) -> None:
    r = create(client, **params)
    assert_text(r, 400, "Illegal group reference\n")
    assert r.headers["server"] == SERVER
    assert nothing_created(client, platform)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a$", "Illegal group reference"),  # the "$" meets the bundle's closing quote
        ("${HOME}", "No group with name {HOME}"),
        ("${a.b}", "named capturing group is missing trailing '}'"),
    ],
)
def test_other_replacement_syntax_errors_are_400(
    client: httpx.Client, value: str, message: str
) -> None:
    assert_text(create(client, cmd="echo", args=value), 400, message + "\n")


def test_dollar_digit_is_a_500_without_newline(
    client: httpx.Client, platform: LocalPlatform
) -> None:
    r = create(client, cmd="echo", args="$1")
    assert_text(r, 500, "unexpected exception: java.lang.IndexOutOfBoundsException: No group 1")
    assert nothing_created(client, platform)


def test_double_quote_in_args_breaks_the_job_yaml(
    client: httpx.Client, platform: LocalPlatform
) -> None:
    r = create(client, cmd="python", args='-c "print(1)"')
    assert r.status_code == 500 and r.headers["content-type"] == "text/plain"
    assert r.text.startswith(
        "unexpected exception: org.yaml.snakeyaml.parser.ParserException: "
        "while parsing a flow sequence\n in 'reader', line "
    )
    assert not r.text.endswith("\n")
    assert nothing_created(client, platform)
    # the same in an env value
    r = create(client, cmd="env", env='Q=say "hi"')
    assert r.status_code == 500 and "org.yaml.snakeyaml" in r.text


def test_backslash_is_dropped_silently(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="echo", args="C:\\data a\\b \\$5")
    assert finished_log(client, sid) == "C:data ab $5\n"
    # a trailing backslash escapes the bundle's closing quote, which stays a quote
    sid = create_ok(client, cmd="echo", args="x\\")
    assert finished_log(client, sid) == "x\n"


def test_escaped_backslash_reaches_yaml_as_an_escape(client: httpx.Client) -> None:
    # "\\t" -> replaceAll -> "\t" -> YAML double-quoted escape -> a tab character
    sid = create_ok(client, cmd="printf", args="[%s] a\\\\tb")
    assert finished_log(client, sid) == "[a\tb]"


def test_env_entry_with_empty_name_is_a_500(client: httpx.Client, platform: LocalPlatform) -> None:
    r = create(client, cmd="env", env="=value")
    assert r.status_code == 500 and r.headers["content-type"] == "text/plain"
    assert re.fullmatch(
        r"unexpected exception: io\.kubernetes\.client\.openapi\.ApiException: Message: Not "
        r"Found\nHTTP response code: 404\nHTTP response body: .*jobs\.batch \\\"skaha-headless-"
        r"[a-z0-9-]+-[a-z][a-z0-9]{7}\\\" not found.*\nHTTP response headers: .*",
        r.text,
        re.S,
    )
    assert nothing_created(client, platform)


def test_env_entries_without_exactly_one_equals_are_dropped(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="env", env=["A=1", "B", "C=x=y", "D=4"])
    env = finished_log(client, sid).splitlines()
    assert "A=1" in env and "D=4" in env
    assert not any(line.startswith(("B", "C=")) for line in env)


def test_interactive_sessions_ignore_cmd_args_env(client: httpx.Client) -> None:
    # the image bundle exists only in the headless template
    assert (
        create(client, image=ASTROML, type="notebook", args="$HOME", env='X="').status_code == 200
    )


# --------------------------------------------------------------------- parameters (minor)


def test_parameter_names_are_case_insensitive_on_post(client: httpx.Client) -> None:
    r = client.post(
        "session",
        params={"NAME": "Upper", "Image": TERMINAL, "CMD": "echo", "ARGS": "hi", "Env": "K=V"},
        headers=FORM,
    )
    assert r.status_code == 200, r.text
    sid = r.text.strip()
    assert client.get(f"session/{sid}").json()["name"] == "upper"
    assert finished_log(client, sid) == "hi\n"
    r = client.post(f"session/{sid}", data={"ACTION": "renew"})
    assert_text(r, 400, f"No active job for user {_principal(client)} with session {sid}\n")


def _principal(client: httpx.Client) -> str:
    r = client.post("session/abcdefgh", data={"action": "renew"})
    return r.text.split("No active job for user ", 1)[1].split(" with session")[0]


def test_parameter_names_are_case_insensitive_on_get(client: httpx.Client) -> None:
    stats = client.get("session", params={"VIEW": "stats"})
    assert stats.status_code == 200 and list(stats.json()) == ["cores", "ram"]
    images = client.get("image", params={"TYPE": "carta"}).json()
    assert images and all("carta" in i["types"] for i in images)
    create_ok(client, cmd="true")
    assert client.get("session", params={"TYPE": "notebook"}).json() == []
    # the values stay case-sensitive where the server compares them so
    assert isinstance(client.get("session", params={"view": "STATS"}).json(), list)


@pytest.mark.parametrize("blank", ["cores", "ram", "gpus"])
def test_empty_cores_ram_gpus_are_ignored(client: httpx.Client, blank: str) -> None:
    sid = create_ok(client, cmd="true", **{blank: ""})
    record = client.get(f"session/{sid}").json()
    assert record["isFixedResources"] is False and "requestedRAM" not in record  # flexible
    assert record["requestedGPUCores"] == "0"


def test_blank_cores_counts_as_absent_too(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="true", cores="  ", ram="  ", gpus=" ")
    assert client.get(f"session/{sid}").json()["isFixedResources"] is False


def test_fractional_cores_and_ram_are_requested_as_given(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="sleep", args="5", cores="1.5", ram="1.5")
    record = client.get(f"session/{sid}").json()
    assert record["requestedCPUCores"] == "1.500"  # 1500m
    assert record["requestedRAM"] == "1.61"  # 1536Mi in decimal GB
    stats = client.get("session", params={"view": "stats"}).json()
    assert stats["cores"]["requestedCPUCores"] == 1.5
    client.delete(f"session/{sid}")
    # only the integer part is checked: 0.5 is option 0, which does not exist
    assert_text(create(client, cmd="true", cores="0.5"), 400, "Invalid value for 'cores': 0.5\n")


def test_gpus_are_accepted_but_not_granted_without_gpu_scheduling(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="true", gpus="1")
    assert client.get(f"session/{sid}").json()["requestedGPUCores"] == "0"
    assert_text(create(client, cmd="true", gpus="99"), 400, "Invalid value for 'gpus': 99\n")


# ------------------------------------------------------------------------ ids and names


@pytest.mark.parametrize(
    ("sid", "message"),
    [
        ("bad!id", "canfar.net/id label value must match Kubernetes label value syntax"),
        ("x" * 64, "canfar.net/id label value exceeds 63 characters"),
        ("-abc", "canfar.net/id label value must match Kubernetes label value syntax"),
    ],
)
def test_malformed_session_ids_are_400_not_404(
    client: httpx.Client, sid: str, message: str
) -> None:
    assert_text(client.get(f"session/{sid}"), 400, message + "\n")
    assert_text(client.get(f"session/{sid}", params={"view": "logs"}), 400, message + "\n")
    assert_text(client.get(f"session/{sid}", params={"view": "events"}), 400, message + "\n")
    assert_text(client.post(f"session/{sid}", data={"action": "renew"}), 400, message + "\n")
    assert client.delete(f"session/{sid}").status_code == 200  # delete swallows errors
    # a well-formed unknown id is still the 404
    assert_text(client.get("session/nosuch00"), 404, "session nosuch00 not found\n")


def test_blank_id_of_logs_is_a_blank_label(client: httpx.Client) -> None:
    assert_text(
        client.get("session/", params={"view": "logs"}),
        400,
        "canfar.net/id label value cannot be blank\n",
    )


def test_malformed_app_ids_on_delete(client: httpx.Client) -> None:
    assert_text(
        client.delete("session/abcdefgh/app/no!pe"),
        400,
        "canfar.net/app-id label value must match Kubernetes label value syntax\n",
    )
    assert client.delete("session/abcdefgh/app/zzz").status_code == 200


def test_name_truncated_to_a_label_value(client: httpx.Client) -> None:
    # SessionLabels.truncateLabelValue: a name that is a label value is kept (lower-cased);
    # one that cuts back to nothing is the 400
    sid = create_ok(client, cmd="true", name="Job-2")
    assert client.get(f"session/{sid}").json()["name"] == "job-2"
    assert_text(
        create(client, cmd="true", name="---"), 400, "canfar.net/name label value cannot be blank\n"
    )


# ---------------------------------------------------------------------- registry auth


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Ym9", "Length of Base64 encoded input string is not a multiple of 4."),
        ("Ym9i!mE=", "Illegal character in Base64 encoded data."),
        ("Ym9i OmE=", "Length of Base64 encoded input string is not a multiple of 4."),
        (
            "",
            "No authentication provided for unknown or private image.  Use x-skaha-registry-auth "
            "request header with base64Encode(username:secret).",
        ),
    ],
)
def test_registry_auth_texts_are_cadc_base64s(
    client: httpx.Client, header: str, message: str
) -> None:
    r = client.post(
        "session",
        params={"name": "p", "image": PRIVATE, "cmd": "true"},
        headers={**FORM, "X-Skaha-Registry-Auth": header},
    )
    assert_text(r, 400, message + "\n")


# ------------------------------------------------------------------------------ listing


def test_view_interactive_ignores_type_and_case(client: httpx.Client) -> None:
    job = create_ok(client, cmd="sleep", args="5")
    nb = create_ok(client, name="nb", image=ASTROML, type="notebook")
    listed = client.get("session", params={"view": "Interactive", "type": "headless"})
    assert [r["id"] for r in listed.json()] == [nb]
    assert {r["id"] for r in client.get("session", params={"type": "headless"}).json()} == {job}
    client.delete(f"session/{job}")


def test_repository_is_compact_json(client: httpx.Client) -> None:
    r = client.get("repository")
    assert r.text == '["images.canfar.net"]'
    assert r.headers["content-type"] == "application/json"


def test_images_of_the_docs_are_public(client: httpx.Client) -> None:
    images = {i["id"]: i["types"] for i in client.get("image").json()}
    assert "notebook" in images["images.canfar.net/skaha/base-notebook:latest"]
    assert "headless" in images["images.canfar.net/skaha/base-notebook:latest"]
    assert "headless" in images["images.canfar.net/skaha/astroml:latest"]
    assert "desktop-app" in images["images.canfar.net/skaha/terminal:1.1.1"]
    assert images["images.canfar.net/skaha/carta:5.1.0"] == ["carta"]
    assert images["images.canfar.net/skaha/firefly:2025.2"] == ["firefly"]
    assert images["images.canfar.net/skaha/desktop:1.2.1"] == ["desktop"]
    # the docs' headline example needs no registry credentials
    create_ok(client, image="images.canfar.net/skaha/base-notebook:latest", cmd="env")


# ------------------------------------------------------------------ cadc-rest answers


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("session", "GET, POST, DELETE"),
        ("session/abcdefgh", "GET, POST, DELETE"),
        ("image", "GET"),
        ("context", "GET"),
        ("repository", "GET"),
    ],
)
def test_put_and_head_are_unsupported(client: httpx.Client, path: str, allow: str) -> None:
    r = client.put(path, content=b"x")
    assert_text(r, 405, "unsupported: HTTP PUT\n")
    assert r.headers["allow"] == allow
    assert "x-vo-authenticated" not in r.headers and "server" not in r.headers
    head = client.head(path)
    assert head.status_code == 405 and head.headers["allow"] == allow


def test_server_header_on_action_answers_only(
    client: httpx.Client, platform: LocalPlatform
) -> None:
    assert client.get("session").headers["server"] == SERVER
    assert create(client, image="docker.io/x").headers["server"] == SERVER  # 400
    assert client.get("session/nosuch00").headers["server"] == SERVER  # 404
    anonymous = httpx.get(f"{platform.url}/session")
    assert anonymous.status_code == 400 and anonymous.headers["server"] == SERVER
    wrong = httpx.get(f"{platform.url}/session", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "server" not in wrong.headers  # before the action


def test_desktop_app_type_fails_reading_its_template(client: httpx.Client) -> None:
    assert_text(
        create(client, type="desktop-app"),
        500,
        "unexpected exception: java.nio.file.NoSuchFileException: /config/launch-desktop_app.yaml",
    )


def test_single_records_and_lists_stay_pretty(client: httpx.Client) -> None:
    sid = create_ok(client, cmd="true")
    r = client.get(f"session/{sid}")
    assert r.text == gson_pretty(r.json())


def test_renew_text_and_run_as_group_are_the_servers(
    client: httpx.Client, platform: LocalPlatform
) -> None:
    import os

    r = client.post("session/nosuch00", data={"action": "renew"})
    assert_text(
        r,
        400,
        f"No active job for user PosixPrincipal [uidNumber={os.getuid()},"
        f"{os.getgid()},{platform.username}] with session nosuch00\n",
    )
    # the launch templates set runAsGroup to the posix uid
    record = client.get(f"session/{create_ok(client, cmd='true')}").json()
    assert record["runAsGID"] == record["runAsUID"] == str(os.getuid())


def test_capabilities_are_skahas_document(platform: LocalPlatform) -> None:
    r = httpx.get(f"{platform.base}/skaha/capabilities")
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml"
    assert "replace.me.com" not in r.text
    for standard in (
        "ivo://ivoa.net/std/VOSI#capabilities",
        "vos://cadc.nrc.ca~vospace/CADC/std/Proc#sessions-1.0",
        "http://www.opencadc.org/std/platform#session-1",
    ):
        assert f'standardID="{standard}"' in r.text
    assert f'<accessURL use="base">{platform.url}/session</accessURL>' in r.text
    assert r.text.count('securityMethod standardID="ivo://ivoa.net/sso#cookie"') == 5
    head = httpx.head(f"{platform.base}/skaha/capabilities")
    assert head.status_code == 200 and head.content == b""
    put = httpx.put(f"{platform.base}/skaha/capabilities")
    assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD"


def test_image_goes_through_the_template_fill_too(client: httpx.Client) -> None:
    import base64

    auth = {**FORM, "X-Skaha-Registry-Auth": base64.b64encode(b"bob:s3cret").decode()}
    for kind in ("headless", "notebook"):  # the bundle, or ${software.imageid}
        r = client.post(
            "session",
            params={"name": "i", "image": "images.canfar.net/a$b:1", "type": kind},
            headers=auth,
        )
        assert_text(r, 400, "Illegal group reference\n")
    r = client.post(
        "session",
        params={"name": "i", "image": "images.canfar.net/sk\\aha/x:1", "type": "notebook"},
        headers=auth,
    )
    assert client.get(f"session/{r.text.strip()}").json()["image"] == "images.canfar.net/skaha/x:1"
