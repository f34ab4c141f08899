"""Admission webhooks through the API stand-in, seen by the official client and real kubectl.

A small HTTPS webhook (tests/unit/kubeapi_admission/webhook_server.py) runs in its own thread;
mutating and validating configurations pointing at it by ``clientConfig.url`` + ``caBundle``
are registered in a running stand-in, and ConfigMaps are written with ``kubernetes`` and with
``kubectl`` the way an operator would. This is what proves the stand-in admits like the real
server: patches land, denials reach kubectl's stderr verbatim, UPDATE/DELETE carry oldObject,
dry runs are reviewed but not stored, and a hanging webhook obeys its failure policy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi.pki import new_ca
from tests.kubeapi.testing import RunningKubeApi
from tests.unit.kubeapi_admission.webhook_server import ThreadedWebhook, WebhookServer

pytestmark = pytest.mark.e2e

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NAMESPACE = "default"


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[WebhookServer]:
    ca = new_ca("e2e-webhook-ca")
    serving = ca.issue_server(["webhook.e2e.svc"], ["127.0.0.1"])
    threaded = ThreadedWebhook(ca, serving, tmp_path / "webhook")
    try:
        yield threaded.server
    finally:
        threaded.stop()


def webhook_entry(
    server: WebhookServer,
    name: str,
    path: str,
    *,
    operations: list[str] | None = None,
    policy: str = "Fail",
    object_selector: dict[str, Any] | None = None,
    side_effects: str = "None",
    timeout: int = 10,
) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle},
        "rules": [
            {
                "operations": operations or ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "scope": "Namespaced",
            }
        ],
        "objectSelector": object_selector or {},
        "failurePolicy": policy,
        "sideEffects": side_effects,
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout,
    }


def register(api_client: Any, mutating: list[dict[str, Any]], validating: list[dict[str, Any]]):
    from kubernetes import client

    # NB: plain dict bodies, as kubectl sends them; the typed models add nothing here.
    admission: Any = client.AdmissionregistrationV1Api(api_client)
    if mutating:
        admission.create_mutating_webhook_configuration(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "e2e-mutating"},
                "webhooks": mutating,
            }
        )
    if validating:
        admission.create_validating_webhook_configuration(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "e2e-validating"},
                "webhooks": validating,
            }
        )


def configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {"app": "e2e"}},
        "data": {"key": "value"},
    }


def kubectl(kubeapi: RunningKubeApi, *args: str, stdin: str | None = None):
    env = {**os.environ, "KUBECONFIG": str(kubeapi.kubeconfig_path)}
    return subprocess.run(
        [KUBECTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_error_message(error: Any) -> str:
    return str(json.loads(error.body)["message"])


def test_create_is_patched_for_client_and_kubectl(
    kubeapi: RunningKubeApi, kube_client: Any, webhook: WebhookServer
) -> None:
    from kubernetes import client

    register(
        kube_client,
        mutating=[webhook_entry(webhook, "label.e2e.io", "/patch/admitted")],
        validating=[webhook_entry(webhook, "allow.e2e.io", "/allow")],
    )
    core: Any = client.CoreV1Api(kube_client)
    created = core.create_namespaced_config_map(NAMESPACE, configmap("via-client"))
    assert created.metadata.labels == {"app": "e2e", "admitted": "yes"}
    stored = core.read_namespaced_config_map("via-client", NAMESPACE)
    assert stored.metadata.labels == {"app": "e2e", "admitted": "yes"}

    result = kubectl(
        kubeapi, "create", "--validate=false", "-f", "-", stdin=json.dumps(configmap("via-kubectl"))
    )
    assert result.returncode == 0, result.stderr
    shown = kubectl(kubeapi, "get", "configmap", "via-kubectl", "-n", NAMESPACE, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["metadata"]["labels"]["admitted"] == "yes"

    # NB: the validating webhook sees the object after mutation, as on a real server.
    validated = [c.request["object"]["metadata"]["labels"] for c in webhook.calls("/allow")]
    assert validated == [{"app": "e2e", "admitted": "yes"}] * 2
    mutated = webhook.calls("/patch/admitted")
    assert [c.request["name"] for c in mutated] == ["via-client", "via-kubectl"]
    assert all(c.request["userInfo"]["username"] for c in mutated)


def test_denial_message_reaches_client_and_kubectl_stderr(
    kubeapi: RunningKubeApi, kube_client: Any, webhook: WebhookServer
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    selector = {"matchLabels": {"deny": "yes"}}
    register(
        kube_client,
        mutating=[],
        validating=[webhook_entry(webhook, "deny.e2e.io", "/deny", object_selector=selector)],
    )
    expected = 'admission webhook "deny.e2e.io" denied the request: no thanks'
    core: Any = client.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(NAMESPACE, configmap("denied", {"deny": "yes"}))
    assert caught.value.status == 403
    assert api_error_message(caught.value) == expected

    result = kubectl(
        kubeapi,
        "create",
        "--validate=false",
        "-f",
        "-",
        stdin=json.dumps(configmap("denied-kubectl", {"deny": "yes"})),
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Error from server (Forbidden)" in result.stderr

    allowed = core.create_namespaced_config_map(NAMESPACE, configmap("not-selected"))
    assert allowed.metadata.name == "not-selected"
    assert len(webhook.calls("/deny")) == 2


def test_update_and_delete_are_reviewed_with_old_object(
    kubeapi: RunningKubeApi, kube_client: Any, webhook: WebhookServer
) -> None:
    from kubernetes import client

    register(
        kube_client,
        mutating=[],
        validating=[
            webhook_entry(webhook, "audit.e2e.io", "/allow", operations=["UPDATE", "DELETE"])
        ],
    )
    core: Any = client.CoreV1Api(kube_client)
    core.create_namespaced_config_map(NAMESPACE, configmap("changing"))
    assert webhook.received == [], "CREATE is not in the rule"

    core.patch_namespaced_config_map("changing", NAMESPACE, {"data": {"key": "client"}})
    result = kubectl(kubeapi, "label", "configmap", "changing", "-n", NAMESPACE, "step=kubectl")
    assert result.returncode == 0, result.stderr
    result = kubectl(kubeapi, "delete", "configmap", "changing", "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr

    calls = [c.request for c in webhook.calls("/allow")]
    assert [r["operation"] for r in calls] == ["UPDATE", "UPDATE", "DELETE"]
    first, second, deletion = calls
    assert first["oldObject"]["data"] == {"key": "value"}
    assert first["object"]["data"] == {"key": "client"}
    assert "step" not in second["oldObject"]["metadata"]["labels"]
    assert second["object"]["metadata"]["labels"]["step"] == "kubectl"
    assert deletion["object"] is None
    assert deletion["oldObject"]["metadata"]["labels"]["step"] == "kubectl"
    assert deletion["options"]["kind"] == "DeleteOptions"


def test_dry_run_is_reviewed_but_not_stored(
    kubeapi: RunningKubeApi, kube_client: Any, webhook: WebhookServer
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    register(
        kube_client,
        mutating=[webhook_entry(webhook, "label.e2e.io", "/patch/dry")],
        validating=[
            webhook_entry(
                webhook,
                "effects.e2e.io",
                "/allow",
                object_selector={"matchLabels": {"effects": "yes"}},
                side_effects="Some",
            )
        ],
    )
    core: Any = client.CoreV1Api(kube_client)
    preview = core.create_namespaced_config_map(NAMESPACE, configmap("dry"), dry_run="All")
    assert preview.metadata.labels["dry"] == "yes"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("dry", NAMESPACE)
    assert missing.value.status == 404
    (call,) = webhook.calls("/patch/dry")
    assert call.request["dryRun"] is True

    result = kubectl(
        kubeapi,
        "create",
        "--validate=false",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(configmap("dry-kubectl")),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["labels"]["dry"] == "yes"

    result = kubectl(
        kubeapi,
        "create",
        "--validate=false",
        "--dry-run=server",
        "-f",
        "-",
        stdin=json.dumps(configmap("dry-effects", {"effects": "yes"})),
    )
    assert result.returncode != 0
    assert 'admission webhook "effects.e2e.io" does not support dry run' in result.stderr
    assert webhook.calls("/allow") == []


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
def test_timeout_follows_failure_policy(
    kubeapi: RunningKubeApi, kube_client: Any, webhook: WebhookServer, policy: str
) -> None:
    register(
        kube_client,
        mutating=[],
        validating=[webhook_entry(webhook, "slow.e2e.io", "/hang", policy=policy, timeout=1)],
    )
    name = unique("slow")
    result = kubectl(
        kubeapi, "create", "--validate=false", "-f", "-", stdin=json.dumps(configmap(name))
    )
    shown = kubectl(kubeapi, "get", "configmap", name, "-n", NAMESPACE, "-o", "name")
    if policy == "Ignore":
        assert result.returncode == 0, result.stderr
        assert shown.stdout.strip() == f"configmap/{name}"
    else:
        assert result.returncode != 0
        assert 'failed calling webhook "slow.e2e.io"' in result.stderr
        assert "context deadline exceeded" in result.stderr
        assert "Error from server (InternalError)" in result.stderr
        assert shown.returncode != 0
    assert len(webhook.calls("/hang")) == 1
