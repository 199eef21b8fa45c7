import json
import logging

from pydantic import SecretStr

from bot.config import Settings
from bot.logs import JsonFormatter, setup_logging


def test_json_lines_carry_level_logger_message_and_traceback():
    record = logging.LogRecord(
        "bot.relay", logging.ERROR, __file__, 1, "posting %s failed", ("k",), None
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "bot.relay"
    assert line["message"] == "posting k failed" and "RuntimeError: boom" in line["exc_info"]


def test_settings_and_secrets_logged_stay_hidden(capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("INFO", "json")
        settings = Settings(_env_file=None, slack_bot_token=SecretStr("xoxb-top-secret"))
        logging.getLogger("bot.test").info(
            "settings: %s token %s", settings, settings.slack_bot_token
        )
        out = capsys.readouterr().err
        assert "xoxb-top-secret" not in out and "**********" in out
        assert json.loads(out.strip().splitlines()[-1])["logger"] == "bot.test"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
