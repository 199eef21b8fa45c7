"""Shared bits of the deploy tests: file locations, setting names, a Dockerfile parser."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
SYSTEMD_UNIT = DEPLOY / "systemd" / "paperboy.service"


def setting_env_names() -> set[str]:
    """Every environment variable ``Settings`` reads (``PAPERBOY_<FIELD>`` and aliases)."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        names.add(f"PAPERBOY_{name.upper()}")
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(c).upper() for c in choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


# --- Dockerfile ---


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str

    def flags(self) -> dict[str, str]:
        """``--name=value`` flags at the start of the arguments."""
        found: dict[str, str] = {}
        for token in self.args.split():
            if not token.startswith("--"):
                break
            key, _, value = token[2:].partition("=")
            found[key] = value
        return found

    def operands(self) -> list[str]:
        """The arguments after the flags (exec form or shell words)."""
        rest = self.args
        while rest.startswith("--"):
            _, _, rest = rest.partition(" ")
            rest = rest.lstrip()
        return shlex.split(rest) if not rest.startswith("[") else [rest]


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ``ARG`` defaults and the stages (``FROM`` image already ARG-substituted)."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = pending + stripped
        pending = ""
        keyword, _, rest = logical.partition(" ")
        instruction = Instruction(start, keyword.upper(), rest.strip())
        if instruction.keyword == "FROM":
            words = instruction.operands()
            image = substitute(words[0], args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages and instruction.keyword == "ARG":
            key, _, default = instruction.args.partition("=")
            args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append(instruction)
    return args, stages


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: variables.get(m.group(1) or m.group(2), ""),
        value,
    )


def image_is_pinned(image: str) -> bool:
    """A tag with a full x.y.z version (not ``latest``), or a digest."""
    if "@sha256:" in image:
        return True
    _, _, tag = image.rpartition(":")
    if not tag or "/" in tag or tag == "latest":
        return False
    return re.match(r"^\d+\.\d+(\.\d+)?([.-].*)?$", tag) is not None and tag.count(".") >= 1


def lint_dockerfile(text: str) -> list[str]:
    """The house rules for deploy/Dockerfile; an empty list means it passes."""
    _, stages = parse_dockerfile(text)
    problems: list[str] = []
    if len(stages) < 2:
        return ["not multi-stage: build and runtime should be separate FROM stages"]
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.image not in names and not image_is_pinned(stage.image):
            problems.append(f"base image {stage.image!r} is not pinned to a version")
        for add in stage.all("ADD"):
            if re.search(r"(https?|ftp)://|git@", add.args):
                problems.append(f"line {add.line}: ADD of a URL (download in RUN and verify)")
    final = stages[-1]
    from_earlier = [c for c in final.all("COPY") if c.flags().get("from") in names] + [
        r for r in final.all("RUN") if re.search(r"--mount=[^ ]*from=(\w+)", r.args)
    ]
    if not from_earlier:
        problems.append("the final stage takes nothing from the build stage")

    users = final.all("USER")
    entry = final.all("ENTRYPOINT") + final.all("CMD")
    if not users or users[-1].args.split(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root (add a non-root USER)")
    elif entry and users[-1].line > min(e.line for e in entry):
        problems.append("USER comes after ENTRYPOINT/CMD")
    if not final.all("ENTRYPOINT"):
        problems.append("no ENTRYPOINT")

    checks = final.all("HEALTHCHECK")
    if not checks or checks[-1].args.upper().startswith("NONE"):
        problems.append("no HEALTHCHECK")

    owned_dirs = [w.args for w in final.all("WORKDIR")] + [
        v.strip("[]\" '") for vol in final.all("VOLUME") for v in vol.args.split(",")
    ]
    for copy in final.all("COPY"):
        if copy.flags().get("from") in names and "chown" not in copy.flags():
            target = copy.operands()[-1]
            if any(target == d or target.startswith(d.rstrip("/") + "/") for d in owned_dirs):
                problems.append(f"line {copy.line}: COPY into {target} without --chown")
        elif "from" not in copy.flags() and "chown" not in copy.flags():
            problems.append(f"line {copy.line}: COPY of build-context files without --chown")
    return problems


def healthcheck_command(text: str) -> list[str]:
    """The exec-form command of the final stage's HEALTHCHECK."""
    import json

    _, stages = parse_dockerfile(text)
    check = stages[-1].all("HEALTHCHECK")[-1].args
    exec_form = check[check.index("CMD") + 3 :].strip()
    return list(json.loads(exec_form))
