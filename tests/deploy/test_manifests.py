"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas (kubernetes-validate,
a pinned version, strict: no unknown fields) and make the promises the README states; the compose
file runs 2 replicas with the model read-only; nginx accepts the shipped configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.nginx import REPO, command, configured

KUBERNETES = "1.30.0"  # the oldest version the manifests promise to work on
MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))


def _documents() -> dict[str, dict[str, Any]]:
    return {
        doc["kind"]: doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)  # raises on any error


def test_the_kinds_promised_are_there() -> None:
    assert set(_documents()) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_the_deployment_probes_locks_down_and_mounts_the_model() -> None:
    pod = _documents()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["model"]["readOnly"] is True
    assert mounts["model"]["mountPath"] == "/models"
    assert {"name": "TEXTCLF_MODEL_PATH", "value": "/models/model"} in container["env"]
    # The image's user (Dockerfile `USER 10001:10001`) is the one the pod runs as.
    assert "USER 10001:10001" in (REPO / "Dockerfile").read_text()


def test_the_budget_and_the_autoscaler_keep_a_replica_serving() -> None:
    documents = _documents()
    assert documents["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert documents["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    selector = documents["Deployment"]["spec"]["selector"]["matchLabels"]
    assert documents["Service"]["spec"]["selector"] == selector
    assert documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector


def test_compose_runs_two_replicas_with_a_read_only_model() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    textclf = compose["services"]["textclf"]

    assert textclf["deploy"]["replicas"] == 2
    (model,) = [v for v in textclf["volumes"] if v["target"] == "/models/model"]
    assert model["read_only"] is True
    assert textclf["environment"]["TEXTCLF_MODEL_PATH"] == "/models/model"
    assert textclf["build"]["dockerfile"] == "Dockerfile"
    assert (REPO / "deploy" / textclf["build"]["context"] / "Dockerfile").exists()
    nginx = compose["services"]["nginx"]
    assert any(v["source"] == "./nginx/nginx.conf" for v in nginx["volumes"])


def test_nginx_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    conf = configured(tmp_path, upstreams=["127.0.0.1:9", "127.0.0.1:10"], port=8080)
    test = subprocess.run(command(tmp_path, conf, "-t"), capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    assert "test is successful" in test.stderr
