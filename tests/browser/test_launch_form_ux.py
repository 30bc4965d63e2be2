"""The LaunchForm as a person uses it (issue 15 items 1-6, 13, 14, 18), in Chromium.

In JupyterLab 4 and in Notebook 7, at 900, 1280 and 1400 px, light and dark: the Image field
can be emptied and stays empty; a kind picks one of its images; the images are a real
choice grouped by project; disabled fields look disabled and the form does not jump; the
messages are plain words, each said once, and go when no longer true. Controls are found
by role and accessible name. Screenshots: artifacts/screenshots/launch-form-ux-*.png.
"""

from __future__ import annotations

import re
from typing import Any

import jlab
import pytest
from jlab import SCREENSHOTS, WIDTHS, each_theme, screenshot

SETUP = """
from canfar_widgets import LaunchForm, Session
session = Session()
form = LaunchForm(session)
form
"""
NOTEBOOK = "images.canfar.net/skaha/astroml:latest"
CARTA = "images.canfar.net/skaha/carta:5.1.0"
DESKTOP = "images.canfar.net/skaha/desktop:1.2.1"


@pytest.fixture
def host(front_end, notebook) -> Any:
    """``(page, tag)`` with the form's notebook open and run, in JupyterLab or Notebook 7."""
    front_end.open_and_run(notebook(SETUP))
    page = front_end.page
    form = page.get_by_role("form", name="Launch a CANFAR session")
    form.wait_for()
    # The form is loaded once the platform's images are in the chooser.
    form.get_by_label("Choose an image", exact=True).locator("option[value*='/']").first.wait_for(
        state="attached"
    )
    return page, front_end.tag


def image(form):
    return form.get_by_label("Image", exact=True)


def error_of(form, control):
    """The error line of a control: the last element its aria-describedby names."""
    ids = control.get_attribute("aria-describedby").split()
    return form.locator(f"[id='{ids[-1]}']")


def alert_text(form) -> str:
    # An empty alert is not displayed (so not in the accessibility tree): read its text.
    return (form.locator("[role=alert]").text_content() or "").strip()


def test_the_image_field_and_the_kinds_images(host):
    page, tag = host
    form = page.get_by_role("form", name="Launch a CANFAR session")
    chooser = form.get_by_label("Choose an image", exact=True)
    kind = form.get_by_label("Kind", exact=True)
    for shade in each_theme(page):
        for width in WIDTHS:
            check_at(page, form, chooser, kind, f"launch-form-ux-{tag}-{width}-{shade}", width)


def check_at(page, form, chooser, kind, shot: str, width: int) -> None:
    """Items 1-3 (and 13) at one width and theme."""
    page.set_viewport_size({"width": width, "height": 1200})
    kind.select_option("notebook")
    # Item 3: a real choice (a <select>, every image listed, grouped by project),
    # not a <datalist> that filters by what is typed.
    assert chooser.evaluate("el => el.tagName") == "SELECT"
    assert chooser.locator("optgroup[label='skaha']").count() == 1
    listed = chooser.locator("option[value*='/']").evaluate_all("els => els.map(e => e.value)")
    assert NOTEBOOK in listed and len(listed) >= 3, listed
    assert form.locator("datalist").count() == 2  # only the Cores/RAM suggestions
    chooser.select_option(NOTEBOOK)
    assert image(form).input_value() == NOTEBOOK

    # Item 1: emptied, it stays empty (no snap back, nothing glued on later).
    image(form).fill("")
    page.wait_for_timeout(800)  # a kernel round trip: a snap back would be here by now
    assert image(form).input_value() == ""
    image(form).press_sequentially("skaha/python:3.12", delay=10)
    assert image(form).input_value() == "skaha/python:3.12"
    image(form).fill("")
    form.get_by_role("button", name="Launch").click()
    error = error_of(form, image(form))
    assert error.inner_text().strip().endswith("Image is required.")
    assert image(form).evaluate("el => el === document.activeElement")  # focus where to act
    # Item 13: said once (the field says what; the alert points at it), and gone when true no more.
    assert alert_text(form) == "Not launched: check Image."
    assert form.get_by_text("Image is required.").count() == 1
    assert (form.locator(".cw-status-line").text_content() or "").strip() == ""
    screenshot(form, f"{shot}-empty-image")

    # Item 2: choosing a kind picks one of its images, although the image was typed.
    image(form).fill(NOTEBOOK)
    assert alert_text(form) == ""
    kind.select_option("carta")
    form.locator(f"select option[value='{CARTA}']").wait_for(state="attached")
    assert image(form).input_value() == CARTA
    assert chooser.input_value() == CARTA
    kind.select_option("desktop")
    form.locator(f"select option[value='{DESKTOP}']").wait_for(state="attached")
    assert image(form).input_value() == DESKTOP
    # A typed image that is not one of the kind's: a warning before any launch.
    image(form).fill(NOTEBOOK)
    note = form.get_by_text(re.compile("is not one of the platform's desktop images"))
    assert note.is_visible()
    assert chooser.input_value() == ""  # the chooser says "Any image: type it above"
    screenshot(form, f"{shot}-foreign-image")
    kind.select_option("notebook")
    assert image(form).input_value() == NOTEBOOK  # one of the notebook images: kept
    assert not note.is_visible()


def test_resources_names_and_arguments(host):
    page, tag = host
    page.set_viewport_size({"width": 1280, "height": 1200})
    form = page.get_by_role("form", name="Launch a CANFAR session")
    resources = form.get_by_role("group", name="Resources")
    cores = form.get_by_label("Cores", exact=True)
    ram = form.get_by_label("RAM (GiB)", exact=True)
    launch = form.get_by_role("button", name="Launch")

    # Item 14: the flexible hint's numbers are the form's (from the platform's /context).
    hint = resources.get_by_text(re.compile("^Flexible:"))
    assert "up to 8 cores and 32 GiB" in hint.inner_text()
    assert "Fixed reserves up to 16 cores and 192 GiB" in hint.inner_text()

    # Item 4: disabled looks disabled.
    assert cores.is_disabled() and ram.is_disabled()
    assert float(ram.evaluate("el => getComputedStyle(el).opacity")) < 0.8
    resources.get_by_label("Fixed", exact=True).check()
    assert ram.is_enabled() and ram.input_value() == "8"  # the platform's default
    assert float(ram.evaluate("el => getComputedStyle(el).opacity")) == 1.0
    # No layout jump when an error appears; the RAM box shows a large value whole.
    before = launch.bounding_box()
    ram.fill("1000")
    ram_error = error_of(form, ram)
    # Item 5: the range in plain words, not the 28 values.
    assert ram_error.inner_text().strip().endswith("RAM must be between 1 and 192 GiB.")
    after = launch.bounding_box()
    assert after["y"] == before["y"], (before, after)
    assert ram.evaluate("el => el.scrollWidth <= el.clientWidth")
    screenshot(form, f"launch-form-ux-{tag}-resources-error")
    # Switching to Flexible drops the invalid value; back to Fixed starts from the default.
    resources.get_by_label("Flexible", exact=True).check()
    assert ram.is_disabled() and ram.input_value() == ""
    assert (ram_error.text_content() or "").strip() == ""
    resources.get_by_label("Fixed", exact=True).check()
    assert ram.input_value() == "8" and (ram_error.text_content() or "").strip() == ""
    resources.get_by_label("Flexible", exact=True).check()

    # Item 5: the name rule in words, no regex.
    name = form.get_by_label("Name", exact=True)
    name.fill("-bad-")
    name_error = error_of(form, name).inner_text()
    assert (
        "letters, digits and '-'" in name_error
        and "[A-Za-z" not in name_error
        and "^" not in name_error
    )
    name.fill("good-name")

    # Item 6: arguments without a command: the form says what the platform will do.
    form.get_by_label("Kind", exact=True).select_option("headless")
    form.get_by_label("Arguments", exact=True).fill("hello")
    note = form.get_by_text("No command: the image's own command gets these arguments (hello).")
    assert note.is_visible()
    form.get_by_label("Command", exact=True).fill("echo")
    assert not note.is_visible()

    # Issue 11 section 5: what CANFAR would refuse is said on the field, before any request.
    form.get_by_label("Arguments", exact=True).fill("$HOME")
    launch.click()
    args_error = error_of(form, form.get_by_label("Arguments", exact=True))
    args_error.filter(has_text="CANFAR refuses a '$'").wait_for()
    assert alert_text(form) == "Not launched: check Arguments."
    form.get_by_label("Arguments", exact=True).fill("hello")
    assert alert_text(form) == ""

    # Item 18: unique names: the registry fields are a named group.
    form.get_by_text("Private image registry", exact=True).click()
    group = form.get_by_role("group", name="Private image registry")
    assert group.get_by_label("Registry username", exact=True).is_visible()
    for role in ("combobox", "button", "textbox", "group"):
        names = form.get_by_role(role).evaluate_all(
            "els => els.filter(e => e.offsetParent !== null).map(e => e.getAttribute('aria-label')"
            " || (e.labels && e.labels[0] && e.labels[0].textContent)"
            " || (e.querySelector(':scope > legend, :scope > summary') || {}).textContent || e.textContent)"
        )
        named = [n.strip() for n in names if n and n.strip()]
        assert len(named) == len(set(named)), (role, named)
    screenshot(form, f"launch-form-ux-{tag}-headless")

    # Item 5: a private image without a login: plain words on the field, said once, and
    # never the server's "Use x-skaha-registry-auth request header ..." text.
    image(form).fill("images.canfar.net/private/analysis:1.0")
    launch.click()
    image_error = error_of(form, image(form))
    image_error.filter(
        has_text=re.compile("private or unknown: give your registry login")
    ).wait_for()
    assert "under 'Private image registry'" in image_error.inner_text()
    assert alert_text(form) == "Not launched: check Image."
    assert "x-skaha" not in form.inner_text()
    assert form.get_by_text(re.compile("private or unknown")).count() == 1
    screenshot(form, f"launch-form-ux-{tag}-private-image")


def test_form_screenshots_for_the_docs(page, lab, notebook):
    """The form, light and dark, as the docs show it (docs/img/launch-form-*.png)."""
    nb = notebook(SETUP)
    jlab.open_and_run(page, lab, nb)
    page.set_viewport_size({"width": 1280, "height": 1200})
    form = page.get_by_role("form", name="Launch a CANFAR session")
    form.get_by_label("Choose an image", exact=True).locator("option[value*='/']").first.wait_for(
        state="attached"
    )
    for tag in each_theme(page):
        path = screenshot(form, f"launch-form-{tag}")
        assert path.stat().st_size > 1000
    assert (SCREENSHOTS / "launch-form-dark.png").exists()
