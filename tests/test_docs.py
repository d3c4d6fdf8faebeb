"""Settings and error codes are documented, and the docs say what the code says."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from careweave.cli import main
from careweave.errors import CATALOGUE
from careweave.interactions.result import STATUS
from careweave.settings import SETTINGS, Settings, load_settings

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting) -> None:
    text = (DOCS / "settings.md").read_text()
    assert f"| `{setting.name}` | `{setting.env}` |" in text


def test_settings_table_matches_dataclass() -> None:
    assert [s.name for s in SETTINGS] == list(Settings.__dataclass_fields__)
    defaults = Settings()
    for s in SETTINGS:
        assert getattr(defaults, s.name) == s.default, s.name


def test_environment_and_overrides() -> None:
    env = {"CAREWEAVE_PORT": "9000", "CAREWEAVE_DEMO": "yes", "CAREWEAVE_HOST": "0.0.0.0"}
    s = load_settings(env, {"host": "127.0.0.2", "port": None})
    assert s.port == 9000 and s.demo is True and s.host == "127.0.0.2"
    with pytest.raises(ValueError, match="CAREWEAVE_SERVER"):
        load_settings({"CAREWEAVE_SERVER": "apache"})


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_error_code_is_documented(code: str) -> None:
    category, issue_type, meaning = CATALOGUE[code]
    row = f"| `{code}` | {STATUS[category]} | `{issue_type}` | {meaning} |"
    assert row in (DOCS / "errors.md").read_text()


def test_error_codes_are_well_formed_and_unique() -> None:
    assert all(len(c) == 7 and c.startswith("CW-") and c[3:].isdigit() for c in CATALOGUE)
    meanings = [m for _, _, m in CATALOGUE.values()]
    assert len(set(meanings)) == len(meanings)


def _commands(group, prefix=()):
    yield prefix
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", list(_commands(main)), ids=lambda p: " ".join(p) or "careweave")
def test_every_command_has_help(path) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    "setting", __import__("careweave.settings").settings.TENANT_SETTINGS, ids=lambda s: s.name
)
def test_every_tenant_setting_is_documented(setting) -> None:
    text = (DOCS / "settings.md").read_text()
    assert f"| `{setting.name}` | `{str(setting.default).lower()}` |" in text
