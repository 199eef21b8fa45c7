from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.config_doc import env_example, readme_with_table

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_and_readme_list_every_setting_as_generated():
    assert (ROOT / ".env.example").read_text() == env_example(), "run `make docs`"
    readme = (ROOT / "README.md").read_text()
    assert readme_with_table(readme) == readme, "run `make docs`"
    for name in Settings.model_fields:
        assert f"PAPERBOY_{name.upper()}" in readme


def test_secrets_never_show_in_repr_or_dump(monkeypatch):
    monkeypatch.setenv("PAPERBOY_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    settings = Settings(_env_file=None)
    assert settings.slack_bot_token.get_secret_value() == "xoxb-very-secret"
    assert settings.hf_token.get_secret_value() == "hf_secret_value"
    shown = repr(settings) + str(settings.model_dump())
    assert "xoxb-very-secret" not in shown and "hf_secret_value" not in shown


def test_default_database_is_sqlite_in_the_data_dir(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'paperboy.db'}"


def test_bad_zone_is_rejected_with_its_name():
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(_env_file=None, timezone="Mars/Olympus")
