"""deploy/k8s: manifests parsed with PyYAML and checked against each other and the app.

``kubectl kustomize`` (offline) also renders the kustomization when kubectl is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import httpx
import pytest
import yaml

from bot.web import create_app
from tests.deploy.helpers import DOCKERFILE, K8S, parse_dockerfile, setting_env_names


def load_all() -> dict[str, dict[str, Any]]:
    """Every manifest by kind (one object per kind here)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return load_all()


def pod_spec(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return manifests["Deployment"]["spec"]["template"]["spec"]


def all_containers(manifests: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    spec = pod_spec(manifests)
    return spec.get("initContainers", []) + spec["containers"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_object_an_operator_needs_is_there(manifests: dict[str, dict[str, Any]]) -> None:
    for kind in ("Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"):
        assert kind in manifests, kind
    for kind, doc in manifests.items():
        assert doc.get("apiVersion"), kind
        if kind != "Kustomization":
            assert doc["metadata"]["name"], kind


def test_deployment_shape(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    labels = deployment["template"]["metadata"]["labels"]
    assert selects(deployment["selector"]["matchLabels"], labels)
    spec = pod_spec(manifests)
    assert spec["terminationGracePeriodSeconds"] == 30
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for container in all_containers(manifests):
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
        assert resources["limits"]["memory"], container["name"]
        image = container["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_pod_runs_as_the_image_user(manifests: dict[str, dict[str, Any]]) -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    uid = stages[-1].all("USER")[-1].args.split(":")[0]
    security = pod_spec(manifests)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert str(security["runAsUser"]) == uid


def test_pdb_and_service_select_the_deployment_pods(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    pdb = manifests["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1 < deployment["replicas"]
    assert pdb["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
    service = manifests["Service"]["spec"]
    assert selects(service["selector"], labels)
    container_ports = {
        p["name"]: p["containerPort"] for p in pod_spec(manifests)["containers"][0]["ports"]
    }
    for port in service["ports"]:
        assert port["targetPort"] in container_ports


def test_probes_point_at_ports_and_paths_the_app_serves(
    manifests: dict[str, dict[str, Any]],
) -> None:
    container = pod_spec(manifests)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = manifests["ConfigMap"]["data"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container[probe]["httpGet"]["port"]
        assert ports.get(port, port) == int(config["PAPERBOY_HTTP_PORT"]), probe
    assert config["PAPERBOY_HTTP_HOST"] == "0.0.0.0"


async def test_probe_paths_answer_200_from_the_real_app(
    manifests: dict[str, dict[str, Any]],
) -> None:
    container = pod_spec(manifests)["containers"][0]
    paths = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as http:
        for path in paths:
            assert (await http.get(path)).status_code == 200, path


def test_secret_and_config_references_resolve(manifests: dict[str, dict[str, Any]]) -> None:
    secret = manifests["Secret"]
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    config = manifests["ConfigMap"]
    known = setting_env_names()
    for container in all_containers(manifests):
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == config["metadata"]["name"]
        for variable in container.get("env", []):
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret_keys, ref["key"]
            assert variable["name"] in known, variable["name"]
    for key in set(config["data"]) | secret_keys:
        assert key in known, f"{key} is not a paperboy setting"
    referenced = {
        v["valueFrom"]["secretKeyRef"]["key"]
        for c in all_containers(manifests)
        for v in c.get("env", [])
    }
    assert referenced == secret_keys, "every template key is used, every used key templated"


def test_migrations_run_before_the_bot(manifests: dict[str, dict[str, Any]]) -> None:
    init = pod_spec(manifests)["initContainers"]
    assert [c["args"] for c in init] == [["db", "upgrade"]]
    assert pod_spec(manifests)["containers"][0]["args"] == ["run"]


def test_kustomization_lists_every_manifest_but_the_secret(
    manifests: dict[str, dict[str, Any]],
) -> None:
    resources = manifests["Kustomization"]["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == on_disk - {"secret.example.yaml"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_renders_the_manifests() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout)}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= set(rendered)
    assert "Secret" not in rendered
    assert rendered["Deployment"]["metadata"]["namespace"] == "paperboy"
    # Common labels must not leak into (immutable) selectors.
    selector = rendered["Deployment"]["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/part-of" not in selector
