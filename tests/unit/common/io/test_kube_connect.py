"""``KubernetesApi`` construction and the no-answer path, without any API server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from common.io import kube
from common.model.resources import CONFIGMAPS


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: t0k3n}}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"""
    )
    return path


def test_unreachable_server_is_kube_unavailable(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    with kube.KubernetesApi.connect(_kubeconfig(tmp_path, server), request_timeout_s=5) as api:
        with pytest.raises(kube.KubeUnavailable, match="unreachable") as caught:
            api.get(CONFIGMAPS, "default", "x")
    assert caught.value.__cause__ is not None
    assert kube.is_retryable(caught.value)


def test_bad_kubeconfig_is_a_kube_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(kube.KubeError, match="cannot load Kubernetes client config"):
        kube.KubernetesApi.connect(missing)


def test_in_cluster_config_outside_a_cluster_is_a_kube_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kube.KubeError, match="in-cluster service account"):
        kube.KubernetesApi.connect()


def test_json_patch_needs_a_list_and_merge_patch_an_object(tmp_path: Path) -> None:
    with kube.KubernetesApi.connect(_kubeconfig(tmp_path, "https://127.0.0.1:1")) as api:
        with pytest.raises(TypeError, match="list of operations"):
            api.patch(CONFIGMAPS, "ns", "x", {"a": 1}, patch_type="json")
        with pytest.raises(TypeError, match="JSON object"):
            api.patch(CONFIGMAPS, "ns", "x", [{"op": "add"}], patch_type="merge")
