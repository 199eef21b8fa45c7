"""deploy/prometheus/alerts.yaml: well-formed rules over metrics bot.metrics really exports."""

from __future__ import annotations

import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from tests.deploy.helpers import DEPLOY

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"


def exported_sample_names() -> set[str]:
    metrics = Metrics()
    metrics.count_post("slack", "sent")
    metrics.observe_command("search", 0.1)
    metrics.observe_fetch("huggingface", "ok", 0.1)
    payload, _ = metrics.render()
    return {
        sample.name
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
    }


def test_alert_rules_are_well_formed_and_use_real_metrics() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert rules
    exported = exported_sample_names()
    names = set()
    for rule in rules:
        assert rule["alert"].startswith("Paperboy") and rule["alert"] not in names
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        expr = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", rule["expr"])
        assert expr.count("(") == expr.count(")"), rule["alert"]
        used = set(re.findall(r"\bpaperboy_[a-z0-9_]+", expr))
        assert used, rule["alert"]
        for metric in used:
            assert metric in exported, f"{rule['alert']}: {metric} is not exported"
