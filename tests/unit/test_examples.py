"""Every manifest under example/ stays valid as the CRDs and the annotation parser evolve.

The DANM objects go through what a real apiserver would do to them: prune, default, validate
against the CRDs in integration/crds. Pod annotations go through the CNI's parser. The
manifests in example/invalid/ must be schema-valid too, because what they break are the
webhook's (or the CNI's) rules, and their headers must say which rule and which denial.
The schema/ templates are held to the same standard: the documentation cannot drift from the
CRDs.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubeapi import openapi

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example"
SCHEMA_DOCS = REPO / "schema"
INVALID = EXAMPLES / "invalid"
ANNOTATION = "danm.k8s.io/interfaces"
NETWORK_KEYS = ("network", "tenantNetwork", "clusterNetwork")
OPTION_KEYS = ("ip", "ip6", "proutes", "proutes6")
HEADER_KEYS = ("rule", "operation", "denial")


def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted((REPO / "integration" / "crds").rglob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schemas[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
    return schemas


SCHEMAS = _crd_schemas()


def _documents(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(root.rglob("*.yaml")):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document is not None:
                yield f"{path.relative_to(REPO)}#{index}", document


ALL_DOCUMENTS = [*_documents(EXAMPLES), *_documents(SCHEMA_DOCS)]
DANM_DOCUMENTS = [(where, doc) for where, doc in ALL_DOCUMENTS if doc.get("kind") in SCHEMAS]
CORE_DOCUMENTS = [(where, doc) for where, doc in ALL_DOCUMENTS if doc.get("kind") not in SCHEMAS]


def _ids(rows: Sequence[tuple[Any, ...]]) -> list[str]:
    return [str(row[0]) for row in rows]


def test_examples_cover_every_danm_kind():
    assert {doc["kind"] for _, doc in DANM_DOCUMENTS} == set(SCHEMAS)


@pytest.mark.parametrize(("where", "document"), DANM_DOCUMENTS, ids=_ids(DANM_DOCUMENTS))
def test_danm_object_passes_its_crd_schema_untouched(where, document):
    schema = SCHEMAS[document["kind"]]
    assert document["apiVersion"] == "danm.k8s.io/v1"
    assert document["metadata"]["name"]
    assert openapi.pruned_paths(schema, document) == []
    decoded = openapi.apply_defaults(schema, openapi.prune(schema, document))
    assert decoded == document
    assert openapi.validate(schema, decoded) == []


@pytest.mark.parametrize(("where", "document"), DANM_DOCUMENTS, ids=_ids(DANM_DOCUMENTS))
def test_namespaced_danm_objects_name_their_namespace(where, document):
    namespaced = document["kind"] in ("DanmNet", "TenantNetwork", "DanmEp")
    assert ("namespace" in document["metadata"]) is namespaced


@pytest.mark.parametrize(("where", "document"), CORE_DOCUMENTS, ids=_ids(CORE_DOCUMENTS))
def test_core_object_has_identity(where, document):
    assert isinstance(document.get("apiVersion"), str)
    assert document["apiVersion"]
    assert isinstance(document.get("kind"), str)
    assert document["kind"]
    assert document["metadata"]["name"]


# --------------------------------------------------------------------------------------------
# Pod annotations


def _pod_annotations(document: dict[str, Any]) -> dict[str, Any] | None:
    """Annotations of a Pod, or of the Pod template of a workload; None for other kinds."""
    if document.get("kind") == "Pod":
        annotations: dict[str, Any] = document["metadata"].get("annotations") or {}
        return annotations
    template = (document.get("spec") or {}).get("template")
    if isinstance(template, dict):
        return (template.get("metadata") or {}).get("annotations") or {}
    return None


def _annotated(invalid: bool) -> list[tuple[str, str, dict[str, Any]]]:
    rows = []
    for where, document in CORE_DOCUMENTS:
        if where.startswith("example/invalid/") is not invalid:
            continue
        annotations = _pod_annotations(document)
        if annotations is not None:
            rows.append((where, document["metadata"]["name"], annotations))
    return rows


VALID_PODS = _annotated(invalid=False)
INVALID_PODS = _annotated(invalid=True)


def _real_parser() -> Callable[[str, Any], Any] | None:
    """common.model.annotation.parse_interfaces once it exists (it is another engineer's)."""
    try:
        module = importlib.import_module("common.model.annotation")
    except ImportError:
        return None
    parser: Callable[[str, Any], Any] | None = getattr(module, "parse_interfaces", None)
    return parser


def _check_connections_by_hand(value: Any) -> None:
    connections = json.loads(value)
    assert isinstance(connections, list)
    for connection in connections:
        assert isinstance(connection, dict)
        assert sum(key in connection for key in NETWORK_KEYS) == 1, connection
        assert set(connection) <= {*NETWORK_KEYS, *OPTION_KEYS}, connection


def test_examples_contain_annotated_pods_and_workloads():
    assert len([row for row in VALID_PODS if ANNOTATION in row[2]]) >= 10


@pytest.mark.parametrize(("where", "pod", "annotations"), VALID_PODS, ids=_ids(VALID_PODS))
def test_pod_annotation_is_well_formed(where, pod, annotations):
    if ANNOTATION not in annotations:
        return  # NB: no annotation means "default network", which is valid too
    _check_connections_by_hand(annotations[ANNOTATION])
    parser = _real_parser()
    if parser is not None:
        connections = parser(pod, annotations)
        assert len(connections) == len(json.loads(annotations[ANNOTATION]))


# --------------------------------------------------------------------------------------------
# example/invalid: one object per file, a machine-readable header, schema-valid


def _header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"#\s*(\w+):\s*(.+)$", line)
        if match and match.group(1) in (*HEADER_KEYS, "needs"):
            fields[match.group(1)] = match.group(2).strip()
        if not line.startswith("#"):
            break
    return fields


INVALID_FILES = sorted(INVALID.rglob("*.yaml"))


def test_invalid_examples_exist():
    assert len(INVALID_FILES) >= 20


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.name)
def test_invalid_example_names_rule_and_denial(path):
    header = _header(path)
    assert set(HEADER_KEYS) <= set(header), f"{path.name} header lacks {HEADER_KEYS}"
    if "needs" in header:
        assert (EXAMPLES / header["needs"]).is_file()
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(documents) == 1, "one object per file, so a denial maps to one request"


@pytest.mark.parametrize(("where", "pod", "annotations"), INVALID_PODS, ids=_ids(INVALID_PODS))
def test_invalid_pod_annotation_is_refused(where, pod, annotations):
    path = REPO / where.split("#")[0]
    denial = _header(path)["denial"]
    with pytest.raises(AssertionError):
        _check_connections_by_hand(annotations[ANNOTATION])
    parser = _real_parser()
    if parser is not None:
        with pytest.raises(ValueError, match=re.escape(denial)):
            parser(pod, annotations)


# --------------------------------------------------------------------------------------------
# integration/cni_config and the CNI's RBAC

CNI_CONFIG = REPO / "integration" / "cni_config"


def test_cni_config_has_the_keys_danm_reads():
    config = json.loads((CNI_CONFIG / "00-danm.conf").read_text())
    assert config["type"] == "danm"
    assert config["name"]
    assert set(config) == {"cniVersion", "name", "type", "kubeconfig", "cniDir", "namingScheme"}
    assert config["kubeconfig"].startswith("/")
    assert config["cniDir"] == "/etc/cni/net.d"
    try:
        supported = importlib.import_module("common.cni.version").SUPPORTED_VERSIONS
    except (ImportError, AttributeError):
        supported = ("0.3.1", "0.4.0", "1.0.0")
    assert config["cniVersion"] in supported


def test_example_kubeconfig_uses_the_rbac_user():
    kubeconfig = yaml.safe_load((CNI_CONFIG / "danm-kubeconfig.yaml").read_text())
    assert kubeconfig["kind"] == "Config"
    [context] = kubeconfig["contexts"]
    assert kubeconfig["current-context"] == context["name"]
    assert context["context"]["user"] == "danm"
    assert [user["name"] for user in kubeconfig["users"]] == ["danm"]


def test_cni_rbac_is_least_privilege():
    documents = list(
        yaml.safe_load_all((REPO / "integration/manifests/danm/rbac.yaml").read_text())
    )
    by_kind = {doc["kind"]: doc for doc in documents}
    granted = {
        (group, resource): sorted(rule["verbs"])
        for rule in by_kind["ClusterRole"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("", "pods"): ["get"],
        ("danm.k8s.io", "danmnets"): ["get", "update"],
        ("danm.k8s.io", "tenantnetworks"): ["get", "update"],
        ("danm.k8s.io", "clusternetworks"): ["get", "update"],
        ("danm.k8s.io", "danmeps"): ["create", "delete", "get", "list"],
    }
    binding = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == by_kind["ClusterRole"]["metadata"]["name"]
    assert {"kind": "User", "name": "danm", "apiGroup": "rbac.authorization.k8s.io"} in (
        binding["subjects"]
    )
