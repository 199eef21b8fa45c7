import re
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


@pytest.mark.parametrize(("given", "kept"), [("debug", "DEBUG"), (" Warning ", "WARNING")])
def test_log_level_is_any_logging_level_in_any_case(given, kept):
    assert Settings(_env_file=None, log_level=given).log_level == kept


def test_unknown_log_level_is_rejected_with_the_known_ones():
    with pytest.raises(ValidationError, match="unknown log level 'LOUD'; use DEBUG, INFO"):
        Settings(_env_file=None, log_level="LOUD")


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///tmp/paperboy.db", "postgresql+asyncpg://u:p@db:5432/paperboy", ""],
)
def test_sqlite_and_postgresql_urls_are_accepted(url, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=url)
    default = f"sqlite+aiosqlite:///{tmp_path / 'paperboy.db'}"
    assert settings.effective_database_url == (url or default)


def test_the_database_url_is_a_secret_kept_out_of_reprs():
    settings = Settings(_env_file=None, database_url="postgresql+asyncpg://u:S3CRET@db/paperboy")
    assert "S3CRET" not in repr(settings) and "S3CRET" not in str(settings.model_dump())
    assert settings.effective_database_url == "postgresql+asyncpg://u:S3CRET@db/paperboy"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://x/y", "mysql databases are not supported; use SQLite"),
        ("postgres://x/y", "postgres databases are not supported; use SQLite"),
        ("postgresql://x/y", "postgresql needs the async driver: postgresql+asyncpg://"),
        ("sqlite:///x.db", "sqlite needs the async driver: sqlite+aiosqlite://"),
        ("not a url", "not a database URL"),
    ],
)
def test_unsupported_database_urls_are_rejected_saying_what_works(url, says):
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings(_env_file=None, database_url=url)


def test_the_data_dir_is_created_for_the_database(tmp_path):
    Settings(_env_file=None, data_dir=tmp_path / "a" / "b", database_url=None).create_database_dir()
    assert (tmp_path / "a" / "b").is_dir()


def test_a_data_dir_that_is_a_file_is_called_one(tmp_path):
    afile = tmp_path / "paperboy-data"
    afile.write_text("")
    settings = Settings(_env_file=None, data_dir=afile, database_url=None)
    with pytest.raises(ValueError, match=r"^PAPERBOY_DATA_DIR: .* is a file, not a directory\.$"):
        settings.create_database_dir()


def test_a_data_dir_that_cannot_be_created_names_the_setting_and_why(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = Settings(_env_file=None, data_dir=blocker / "data", database_url=None)
    with pytest.raises(
        ValueError, match=r"PAPERBOY_DATA_DIR: the directory .* cannot be created \("
    ):
        settings.create_database_dir()
    in_url = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{blocker}/x/p.db")
    with pytest.raises(ValueError, match="PAPERBOY_DATABASE_URL: the directory"):
        in_url.create_database_dir()


def test_digest_sizes_have_the_subscribe_command_s_limit_and_default():
    from bot.app import static_subscription
    from bot.options import UsageError
    from bot.schedule import MAX_TOP, parse_subscribe

    with pytest.raises(ValidationError):
        Settings(_env_file=None, digest_top=MAX_TOP + 1)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, digests=[{"platform": "slack", "channel": "C1", "top": 26}])
    settings = Settings(
        _env_file=None,
        digest_top=7,
        digests=[
            {"platform": "slack", "channel": "C1"},
            {"platform": "slack", "channel": "C2", "top": 3},
        ],
    )
    tops = [static_subscription(d, settings.digest_top).top for d in settings.digests]
    assert tops == [7, 3]
    base = static_subscription(settings.digests[0], settings.digest_top)
    assert parse_subscribe(f"top {MAX_TOP}", base).top == MAX_TOP
    with pytest.raises(UsageError):
        parse_subscribe(f"top {MAX_TOP + 1}", base)
