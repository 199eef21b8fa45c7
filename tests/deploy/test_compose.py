"""deploy/compose.yaml: the checks `docker compose config` would make, plus paperboy's own.

No compose plugin is installed here, so the file is parsed with PyYAML (which resolves the
``<<`` merge keys and anchors just like compose) and validated by ``compose_problems``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.deploy.helpers import COMPOSE, DOCKERFILE, healthcheck_command, setting_env_names

DEPENDENCY_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``$$`` with an (empty) environment."""
    env = env or {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(3)
        return env.get(name) or (default if default is not None else "")

    return re.sub(r"\$\$|\$\{(\w+)(:-([^}]*))?\}", replace, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def is_paperboy(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("paperboy")


def compose_problems(doc: dict[str, Any]) -> list[str]:
    """Structural errors compose would refuse, plus paperboy's conventions."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = doc.get("services") or {}
    declared_volumes = set((doc.get("volumes") or {}).keys())
    known_settings = setting_env_names()
    if not services:
        return ["no services"]
    top_level = {"name", "services", "volumes", "networks", "configs", "secrets"}
    for key in doc:
        if key not in top_level and not key.startswith("x-"):
            problems.append(f"unknown top-level key {key!r}")
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        image = str(service.get("image", ""))
        if image and "build" not in service and (":" not in image or image.endswith(":latest")):
            problems.append(f"{name}: image {image!r} is not pinned")
        for dep, condition in depends_on(service).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep!r}")
            elif condition not in DEPENDENCY_CONDITIONS:
                problems.append(f"{name}: unknown condition {condition!r}")
            elif condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} healthy but {dep} has no healthcheck")
        for mount in service.get("volumes") or []:
            source = mount.get("source") if isinstance(mount, dict) else mount.split(":")[0]
            named = source and not source.startswith(("/", ".", "~", "$"))
            if named and source not in declared_volumes:
                problems.append(f"{name}: volume {source!r} is not declared")
        long_running = service.get("restart", "no") != "no"
        if long_running and "healthcheck" not in service:
            problems.append(f"{name}: no healthcheck")
        if is_paperboy(service):
            for variable in environment(service):
                if not variable.startswith("PAPERBOY_"):
                    problems.append(f"{name}: {variable} does not start with PAPERBOY_")
                elif variable not in known_settings:
                    problems.append(f"{name}: {variable} is not a paperboy setting")
    published = [
        str(port).split(":")[0]
        for service in services.values()
        for port in service.get("ports") or []
        if ":" in str(port)
    ]
    if len(published) != len(set(published)):
        problems.append(f"host ports published twice: {published}")
    problems += cycle_problems({n: set(depends_on(s)) for n, s in services.items()})
    return problems


def cycle_problems(graph: dict[str, set[str]]) -> list[str]:
    visiting: set[str] = set()
    done: set[str] = set()
    problems: list[str] = []

    def visit(node: str) -> None:
        if node in done or node not in graph:
            return
        if node in visiting:
            problems.append(f"dependency cycle through {node}")
            return
        visiting.add(node)
        for nxt in graph[node]:
            visit(nxt)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)
    return problems


@pytest.fixture
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_has_no_problems(compose: dict[str, Any]) -> None:
    assert compose_problems(compose) == []


BREAKAGES = {
    "no image or build": (
        lambda d: d["services"]["postgres"].pop("image"),
        "neither image nor build",
    ),
    "unknown dependency": (
        lambda d: d["services"]["paperboy"]["depends_on"].update(redis={}),
        "unknown service 'redis'",
    ),
    "undeclared volume": (lambda d: d["volumes"].pop("postgres-data"), "is not declared"),
    "foreign env name": (
        lambda d: d["services"]["paperboy"]["environment"].update(DATABASE_URL="x"),
        "does not start with PAPERBOY_",
    ),
    "misspelt setting": (
        lambda d: d["services"]["paperboy"]["environment"].update(PAPERBOY_DATABSE_URL="x"),
        "not a paperboy setting",
    ),
    "missing healthcheck": (
        lambda d: d["services"]["postgres"].pop("healthcheck"),
        "postgres has no healthcheck",
    ),
    "cycle": (
        lambda d: d["services"]["postgres"].update(depends_on=["paperboy"]),
        "dependency cycle",
    ),
    "latest image": (
        lambda d: d["services"]["postgres"].update(image="postgres:latest"),
        "not pinned",
    ),
    "port clash": (
        lambda d: d["services"]["paperboy-replica"].update(ports=["8080:8080"]),
        "published twice",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_validation_catches_broken_variants(case: str) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    breakage, expected = BREAKAGES[case]
    breakage(doc)
    problems = compose_problems(doc)
    assert any(expected in p for p in problems), problems


def test_paperboy_waits_for_a_healthy_postgres_and_a_finished_migration(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    replicas = [n for n, s in services.items() if is_paperboy(s) and s.get("restart") != "no"]
    assert len(replicas) >= 2, "a second replica shows scale-out"
    for name in replicas:
        deps = depends_on(services[name])
        assert deps["postgres"] == "service_healthy"
        assert deps["migrate"] == "service_completed_successfully"
        env_files = services[name]["env_file"]
        assert all(f["path"] == ".env" and f["required"] is False for f in env_files)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert any(str(v).startswith("postgres-data:") for v in services["postgres"]["volumes"]), (
        "PostgreSQL data lives on a named volume"
    )


def test_database_url_points_at_the_postgres_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = environment(services["postgres"])
    url = make_url(environment(services["paperboy"])["PAPERBOY_DATABASE_URL"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgres" and url.port == 5432
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]
    assert environment(services["paperboy-replica"]) == environment(services["paperboy"])


def test_compose_healthcheck_matches_the_image_healthcheck(compose: dict[str, Any]) -> None:
    image_check = healthcheck_command(DOCKERFILE.read_text())
    test = compose["services"]["paperboy"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:] == image_check


def test_interpolation_follows_compose_rules() -> None:
    assert interpolate("a${X:-b}c") == "abc"
    assert interpolate("a${X:-b}c", {"X": "z"}) == "azc"
    assert interpolate("${X}") == ""
    assert interpolate("$$HOME") == "$HOME"
