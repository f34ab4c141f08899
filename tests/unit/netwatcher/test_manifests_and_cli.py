"""The shipped DaemonSet and RBAC agree with what netwatcher does and how its flags parse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netwatcher.cli import parse_args

MANIFESTS = Path(__file__).resolve().parents[3] / "integration" / "manifests" / "netwatcher"


def documents(name: str) -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load_all((MANIFESTS / name).read_text())
    return {doc["kind"]: doc for doc in loaded}


def test_rbac_grants_exactly_reads_of_networks_and_event_writes():
    rbac = documents("rbac.yaml")
    rules = {
        (group, resource): sorted(rule["verbs"])
        for rule in rbac["ClusterRole"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    reads = ["get", "list", "watch"]
    assert rules == {
        ("danm.k8s.io", "danmnets"): reads,
        ("danm.k8s.io", "tenantnetworks"): reads,
        ("danm.k8s.io", "clusternetworks"): reads,
        ("", "events"): ["create", "patch"],
    }
    (subject,) = rbac["ClusterRoleBinding"]["subjects"]
    account = rbac["ServiceAccount"]["metadata"]
    assert (subject["name"], subject["namespace"]) == (account["name"], account["namespace"])
    assert rbac["ClusterRoleBinding"]["roleRef"]["name"] == rbac["ClusterRole"]["metadata"]["name"]


def test_daemonset_is_host_network_with_net_admin_only_and_probes_the_health_port():
    daemonset = documents("daemonset.yaml")["DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["serviceAccountName"] == documents("rbac.yaml")["ServiceAccount"]["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    args = parse_args(container["command"][1:])
    assert args.kubeconfig is None, "in-cluster config"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": args.health_port}
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_node_name_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NODE_NAME", "worker-7")
    assert parse_args([]).node_name == "worker-7"
    assert parse_args(["--node-name", "n1"]).node_name == "n1"


@pytest.mark.parametrize(
    "argv", [["--resync-seconds", "0"], ["--health-port", "70000"], ["--log-format", "xml"]]
)
def test_bad_flags_are_usage_errors(argv: list[str]):
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
