"""deploy/systemd/paperboy.service: parsed with configparser; systemd-analyze when present."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.helpers import COMPOSE, K8S, SYSTEMD_UNIT


def parse_unit(text: str) -> configparser.RawConfigParser:
    # systemd allows repeated keys (the last wins for scalars); keep case as written.
    parser = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def seconds(value: str) -> float:
    """systemd time spans as used here: ``30``, ``10s``, ``5min``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m)?", value.strip())
    assert match, value
    number = float(match.group(1))
    return number * 60 if match.group(2) in ("min", "m") else number


@pytest.fixture(scope="module")
def unit() -> configparser.RawConfigParser:
    return parse_unit(SYSTEMD_UNIT.read_text())


def test_runs_as_its_own_user_with_settings_from_the_env_file(
    unit: configparser.RawConfigParser,
) -> None:
    service = unit["Service"]
    assert service["User"] == "paperboy"
    assert service["EnvironmentFile"] == "/etc/paperboy/env"
    assert service["ExecStart"].split()[1:] == ["run"]
    assert service["ExecStart"].split()[0].startswith("/")
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_restarts_on_failure_without_crash_looping(unit: configparser.RawConfigParser) -> None:
    service, section = unit["Service"], unit["Unit"]
    assert service["Restart"] == "on-failure"
    restart_sec = seconds(service["RestartSec"])
    assert restart_sec >= 5
    # StartLimit* belong in [Unit]; in [Service] systemd ignores them (a classic mistake).
    assert "StartLimitIntervalSec" not in service and "StartLimitBurst" not in service
    interval = seconds(section["StartLimitIntervalSec"])
    burst = int(section["StartLimitBurst"])
    # The limit must be reachable: `burst` restarts fit inside the interval.
    assert burst * restart_sec < interval
    assert burst >= 3


def test_stops_with_sigterm_in_bounded_time(unit: configparser.RawConfigParser) -> None:
    service = unit["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert seconds(service["TimeoutStopSec"]) == 30


def test_stop_grace_period_is_the_same_everywhere(unit: configparser.RawConfigParser) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert seconds(unit["Service"]["TimeoutStopSec"]) == grace
    assert seconds(compose["services"]["paperboy"]["stop_grace_period"]) == grace


def test_hardening_options(unit: configparser.RawConfigParser) -> None:
    service = unit["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    # ProtectSystem=strict leaves only the state directory writable; it must match the data dir.
    assert service["StateDirectory"] == "paperboy"
    environment = [
        line.partition("=")[2]
        for line in SYSTEMD_UNIT.read_text().splitlines()
        if line.startswith("Environment=")
    ]
    assert "PAPERBOY_DATA_DIR=/var/lib/paperboy" in environment
    assert service["WorkingDirectory"] == "/var/lib/paperboy"


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with the not-installed-here paperboy binary swapped for /bin/true."""
    text = SYSTEMD_UNIT.read_text().replace("/opt/paperboy/bin/paperboy", "/bin/true")
    copy = tmp_path / "paperboy.service"
    copy.write_text(text)
    return copy


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


@needs_systemd
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(runnable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 even for unknown keys; any message at all is a defect here.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd
def test_systemd_analyze_security_exposure_is_low(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(runnable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0
