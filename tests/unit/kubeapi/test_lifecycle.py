"""Pure lifecycle helpers of the registry and server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.registry import (
    bump_generation,
    name_causes,
    normalise_crd,
    prepare_status_update,
)
from tests.kubeapi.resources import BUILTINS, ResourceType, from_crd
from tests.kubeapi.server import _version_priority, human_duration, json_path_value

PODS = next(r for r in BUILTINS if r.plural == "pods")
CUSTOM = ResourceType("g.io", "v1", "things", "Thing", True, has_generation=True, custom=True)
CUSTOM_WITH_STATUS = ResourceType(
    "g.io", "v1", "things", "Thing", True, has_generation=True, custom=True, status_subresource=True
)


@pytest.mark.parametrize(
    ("rt", "old", "new", "generation"),
    [
        (CUSTOM, {"spec": 1}, {"spec": 2}, 2),
        (CUSTOM, {"spec": 1}, {"spec": 1, "metadata": {"labels": {"a": "b"}}}, 1),
        (CUSTOM, {"spec": 1}, {"spec": 1, "status": 1}, 2),
        (CUSTOM_WITH_STATUS, {"spec": 1}, {"spec": 1, "status": 1}, 1),
    ],
)
def test_bump_generation(
    rt: ResourceType, old: dict[str, Any], new: dict[str, Any], generation: int
) -> None:
    old = {**old, "metadata": {"generation": 1}}
    new = {"metadata": {}, **new}
    bump_generation(rt, old, new)
    assert new["metadata"]["generation"] == generation


@pytest.mark.parametrize(
    ("plural", "name", "ok"),
    [
        ("configmaps", "a.b-c", True),
        ("configmaps", "A", False),
        ("namespaces", "a.b", False),
        ("services", "1abc", False),
        ("services", "abc", True),
        ("pods", "", False),
        ("pods", "x" * 254, False),
    ],
)
def test_name_validation(plural: str, name: str, ok: bool) -> None:
    rt = next(r for r in BUILTINS if r.plural == plural and not r.group)
    assert (name_causes(rt, {"name": name}) == []) is ok


def test_status_split() -> None:
    current = {"metadata": {"name": "p"}, "spec": {"a": 1}, "status": {"s": 1}}
    candidate = {
        "metadata": {"name": "p", "labels": {"x": "y"}},
        "spec": {"a": 2},
        "status": {"s": 2},
    }
    assert prepare_status_update(PODS, current, candidate, "status") == {
        "metadata": {"name": "p"},
        "spec": {"a": 1},
        "status": {"s": 2},
    }
    assert prepare_status_update(PODS, current, candidate, "") == {
        "metadata": {"name": "p", "labels": {"x": "y"}},
        "spec": {"a": 2},
        "status": {"s": 1},
    }


def test_normalise_crd_and_served_types() -> None:
    crd: dict[str, Any] = {
        "metadata": {"name": "things.g.io"},
        "spec": {
            "group": "g.io",
            "scope": "Cluster",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                },
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                },
            ],
        },
    }
    assert normalise_crd(crd) == []
    assert crd["spec"]["names"]["singular"] == "thing"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert {c["type"] for c in crd["status"]["conditions"]} == {"Established", "NamesAccepted"}
    served = from_crd(crd)
    assert [(r.version, r.namespaced, r.storage_version) for r in served] == [
        ("v1beta1", False, "v1"),
        ("v1", False, "v1"),
    ]
    broken = {"metadata": {"name": "x"}, "spec": {"names": {}}}
    fields = {c.field for c in normalise_crd(broken)}
    assert {"spec.group", "spec.names.plural", "spec.versions", "metadata.name"} <= fields


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (20 * 3600, "20h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_json_path_and_version_priority() -> None:
    obj = {"spec": {"items": [{"n": 1}, {"n": 2}]}}
    assert json_path_value(obj, ".spec.items[1].n") == 2
    assert json_path_value(obj, ".spec.missing.x") is None
    assert sorted(["v1beta1", "v2", "v1", "v1alpha1", "foo"], key=_version_priority) == [
        "v2",
        "v1",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]
