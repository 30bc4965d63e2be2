"""The ``canfar-widgets`` dispatcher: every subcommand is there, and a broken one says why."""

from __future__ import annotations

import pytest

from canfar_widgets import cli


def test_every_subcommand_is_registered():
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == {"local", "demo", "batch"}


def test_a_subcommand_that_cannot_be_imported_raises_its_import_error(monkeypatch):
    # Once, a missing dependency made the subcommand silently vanish from --help.
    monkeypatch.setitem(cli._SUBCOMMANDS, "broken", ("canfar_widgets.no_such_module", "broken"))
    with pytest.raises(ModuleNotFoundError, match=r"canfar_widgets\.no_such_module"):
        cli.build_parser()


def test_no_command_prints_help_and_returns_2(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
