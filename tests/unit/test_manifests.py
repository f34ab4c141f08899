"""Every manifest under integration/ parses and uses only APIs a Kubernetes 1.30+ server serves.

Kubernetes removes beta API versions on a schedule (extensions/v1beta1 and apps/v1beta2 in 1.16,
policy/v1beta1 and batch/v1beta1 in 1.25, autoscaling/v2beta2 in 1.26, flowcontrol
v1beta2 in 1.29 ...); a manifest on a removed version fails at `kubectl apply` time on the
user's cluster. The allow-list below holds GA versions only, each with the kinds we use from
it, so a typo in a kind fails here too. The images the manifests name must have a Dockerfile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "integration"

#: group/version -> kinds we may use from it; all GA and served by Kubernetes 1.30 and later.
SERVED_KINDS: dict[str, frozenset[str]] = {
    "v1": frozenset(
        {"Namespace", "Service", "ServiceAccount", "ConfigMap", "Secret", "Pod", "Config"}
    ),
    "apps/v1": frozenset({"Deployment", "DaemonSet", "StatefulSet"}),
    "rbac.authorization.k8s.io/v1": frozenset(
        {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    ),
    "admissionregistration.k8s.io/v1": frozenset(
        {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    ),
    "apiextensions.k8s.io/v1": frozenset({"CustomResourceDefinition"}),
    "discovery.k8s.io/v1": frozenset({"EndpointSlice"}),
    "coordination.k8s.io/v1": frozenset({"Lease"}),
    "policy/v1": frozenset({"PodDisruptionBudget"}),
    "scheduling.k8s.io/v1": frozenset({"PriorityClass"}),
    "danm.k8s.io/v1": frozenset(
        {"DanmNet", "TenantNetwork", "ClusterNetwork", "TenantConfig", "DanmEp"}
    ),
}

MANIFESTS = sorted(
    p for p in INTEGRATION.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
)


def _documents(path: Path) -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents, f"{path} holds no YAML document"
    for document in documents:
        assert isinstance(document, dict), f"{path}: a document is not a mapping"
    return documents


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_there_are_manifests_for_every_component() -> None:
    folders = {p.parent.name for p in MANIFESTS if "manifests" in p.parts}
    assert {"danm", "webhook"} <= folders


@pytest.mark.parametrize("path", MANIFESTS, ids=_rel)
def test_manifest_uses_served_api_versions_only(path: Path) -> None:
    for document in _documents(path):
        api_version = document.get("apiVersion")
        kind = document.get("kind")
        assert api_version in SERVED_KINDS, f"{_rel(path)}: {api_version} is not a GA API"
        assert kind in SERVED_KINDS[api_version], f"{_rel(path)}: {kind} is not in {api_version}"


def _pod_specs(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("kind") in ("Deployment", "DaemonSet", "StatefulSet"):
        return [document["spec"]["template"]["spec"]]
    if document.get("kind") == "Pod":
        return [document["spec"]]
    return []


WORKLOADS = [
    (path, spec)
    for path in MANIFESTS
    if "manifests" in path.parts
    for document in _documents(path)
    for spec in _pod_specs(document)
]


@pytest.mark.parametrize(("path", "spec"), WORKLOADS, ids=[_rel(p) for p, _ in WORKLOADS])
def test_workload_images_have_a_dockerfile_and_limits_on_privilege(
    path: Path, spec: dict[str, Any]
) -> None:
    for container in spec.get("initContainers", []) + spec["containers"]:
        image = container["image"]
        folder = {"danm-cni-installer": "cni-installer"}.get(image, image)
        assert (INTEGRATION / "docker" / folder / "Dockerfile").is_file(), (
            f"{_rel(path)}: no integration/docker/{folder}/Dockerfile for image {image}"
        )
        security = container.get("securityContext", {})
        assert security.get("allowPrivilegeEscalation") is False, f"{_rel(path)}: {image}"
        assert security.get("privileged") is not True, f"{_rel(path)}: {image} is privileged"


@pytest.mark.parametrize(("path", "spec"), WORKLOADS, ids=[_rel(p) for p, _ in WORKLOADS])
def test_workload_command_is_the_binary_its_image_holds(path: Path, spec: dict[str, Any]) -> None:
    # NB: a `command` overrides the image's ENTRYPOINT; a path the image lacks is a Pod that
    # never starts, which no schema check sees.
    for container in spec["containers"]:
        if "command" not in container:
            continue
        folder = {"danm-cni-installer": "cni-installer"}.get(container["image"], container["image"])
        dockerfile = (INTEGRATION / "docker" / folder / "Dockerfile").read_text()
        entry = re.search(r'^ENTRYPOINT \["([^"]+)"', dockerfile, re.MULTILINE)
        assert entry, f"integration/docker/{folder}/Dockerfile: no exec-form ENTRYPOINT"
        assert container["command"][0] == entry.group(1), (
            f"{_rel(path)}: command {container['command'][0]} is not the image's {entry.group(1)}"
        )


DOCKERFILES = sorted((INTEGRATION / "docker").glob("*/Dockerfile"))


def test_there_is_a_dockerfile_per_long_running_component_and_the_installer() -> None:
    assert {p.parent.name for p in DOCKERFILES} >= {
        "webhook",
        "netwatcher",
        "svcwatcher",
        "cni-installer",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_copies_existing_paths_and_runs_a_real_entry_point(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    for line in text.splitlines():
        match = re.match(r"^COPY\s+(?!--from)(.+)\s+\S+$", line)
        if match:
            for source in match.group(1).split():
                assert (REPO / source).exists(), f"{dockerfile}: COPY source {source} is missing"
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"', text, re.MULTILINE)
    assert entry, f"{dockerfile}: no exec-form ENTRYPOINT"
    component = dockerfile.parent.name
    if component == "cni-installer":
        assert "install.sh" in text
        return
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf"^{component}\s*=", pyproject, re.MULTILINE), component
    assert entry.group(1) == f"/opt/danm/bin/{component}"
