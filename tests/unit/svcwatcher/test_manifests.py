"""integration/manifests/svcwatcher: the Deployment's flags parse, the RBAC covers what we do."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.model.resources import DANMEPS, ENDPOINTS, ENDPOINTSLICES, LEASES, PODS, SERVICES
from svcwatcher.cli import build_arg_parser
from svcwatcher.controller import SvcWatcher
from tests.unit.svcwatcher.builders import danmep, pod, service
from tests.unit.svcwatcher.fakes import FakeKube
from tests.unit.svcwatcher.test_controller import settle

MANIFESTS = Path(__file__).resolve().parents[3] / "integration" / "manifests" / "svcwatcher"
VERB_OF_CALL = {"create": "create", "replace": "update", "delete": "delete", "patch": "patch"}


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def _granted(kind: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) granted by every Role/ClusterRole of that kind."""
    granted: set[tuple[str, str, str]] = set()
    for doc in _docs("rbac.yaml"):
        if doc["kind"] != kind:
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.update((group, resource, verb) for verb in rule["verbs"])
    return granted


def test_deployment_runs_our_script_with_valid_flags_and_our_service_account() -> None:
    (deployment,) = _docs("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    pod_spec = deployment["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    command = container["command"]
    assert command[0] == "/opt/danm/bin/svcwatcher"  # NB: where the image installs it
    args = [a.replace("$(POD_NAME)", "svcwatcher-abc") for a in command[1:] + container["args"]]
    parsed = build_arg_parser().parse_args(args)
    assert parsed.leader_elect
    assert parsed.identity == "svcwatcher-abc"
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    (port,) = container["ports"]
    assert port["containerPort"] == parsed.health_port, shlex.join(args)
    accounts = [d for d in _docs("rbac.yaml") if d["kind"] == "ServiceAccount"]
    assert [a["metadata"]["name"] for a in accounts] == [pod_spec["serviceAccountName"]]
    roles = [d for d in _docs("rbac.yaml") if d["kind"] == "Role"]
    assert {r["metadata"]["namespace"] for r in roles} == {parsed.lease_namespace}
    (lease_rule,) = [r for r in roles[0]["rules"] if r.get("resourceNames")]
    assert lease_rule["resourceNames"] == [parsed.lease_name]


@pytest.mark.parametrize(
    "resource", [SERVICES, PODS, DANMEPS, ENDPOINTS, ENDPOINTSLICES], ids=lambda r: r.plural
)
def test_cluster_role_allows_the_informers(resource: Any) -> None:
    granted = _granted("ClusterRole")
    for verb in ("list", "watch"):
        assert (resource.group, resource.plural, verb) in granted


def test_cluster_role_allows_every_write_the_controller_makes() -> None:
    fake = FakeKube()
    watcher = SvcWatcher(fake)
    watcher.on_service("ADDED", fake.put(SERVICES, service("s", selector={"a": "b"}, network="n")))
    watcher.on_service("ADDED", fake.put(SERVICES, service("bad", selector="{", network="n")))
    for i in range(120):
        watcher.on_pod("ADDED", pod(f"p{i}", labels={"a": "b"}))
        watcher.on_danmep("ADDED", danmep(f"p{i}", "n", ipv4=f"10.0.{i // 100}.{i % 100 + 1}/16"))
    settle(watcher, fake)
    for i in range(10, 120):
        watcher.on_pod("MODIFIED", pod(f"p{i}", labels={"a": "b"}, ready=False))
    settle(watcher, fake)
    for i in range(50, 120):
        watcher.on_pod("DELETED", pod(f"p{i}"))
    settle(watcher, fake)
    watcher.on_service("DELETED", fake.objects.pop(("services", "vnf", "s")))
    settle(watcher, fake)
    used = {(plural, VERB_OF_CALL[call]) for call, plural, *_ in fake.writes()}
    assert {verb for plural, verb in used if plural == "endpointslices"} == {
        "create",
        "update",
        "delete",
    }
    groups = {r.plural: r.group for r in (ENDPOINTS, ENDPOINTSLICES, SERVICES)}
    groups["events"] = ""
    granted = _granted("ClusterRole")
    for plural, verb in used:
        assert (groups[plural], plural, verb) in granted, (plural, verb)
    # NB: get after AlreadyExists/Conflict.
    assert ("", "endpoints", "get") in granted
    assert ("discovery.k8s.io", "endpointslices", "get") in granted


def test_role_allows_leader_election() -> None:
    granted = _granted("Role")
    for verb in ("get", "create", "update"):
        assert (LEASES.group, LEASES.plural, verb) in granted
