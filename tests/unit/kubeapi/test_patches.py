from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.patches import (
    PatchApplyError,
    PatchFormatError,
    json_patch,
    merge_key_for,
    merge_patch,
    strategic_merge_patch,
)


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": 1}, {"a": None}, {}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}, {"a": {"b": 3, "c": 2}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
        ({"a": 1}, [1], [1]),
    ],
)
def test_merge_patch(target: Any, patch: Any, result: Any) -> None:
    original = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == original


@pytest.mark.parametrize(
    ("ops", "result"),
    [
        ([{"op": "add", "path": "/b", "value": 2}], {"a": [1, 2], "b": 2}),
        ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3]}),
        ([{"op": "add", "path": "/a/0", "value": 0}], {"a": [0, 1, 2]}),
        ([{"op": "remove", "path": "/a/1"}], {"a": [1]}),
        ([{"op": "replace", "path": "/a", "value": "x"}], {"a": "x"}),
        ([{"op": "move", "from": "/a", "path": "/b"}], {"b": [1, 2]}),
        ([{"op": "copy", "from": "/a/0", "path": "/c"}], {"a": [1, 2], "c": 1}),
        ([{"op": "test", "path": "/a", "value": [1, 2]}], {"a": [1, 2]}),
        ([{"op": "add", "path": "/x~1y", "value": 1}], {"a": [1, 2], "x/y": 1}),
    ],
)
def test_json_patch(ops: list[dict[str, Any]], result: Any) -> None:
    target = {"a": [1, 2]}
    assert json_patch(target, ops) == result
    assert target == {"a": [1, 2]}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": [2]}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/a/5", "value": 1}],
        [{"op": "bogus", "path": "/a"}],
        [{"op": "add", "path": "/b", "value": 1}, {"op": "test", "path": "/b", "value": 2}],
    ],
)
def test_json_patch_failures(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchApplyError):
        json_patch({"a": [1]}, ops)


def test_json_patch_format() -> None:
    with pytest.raises(PatchFormatError):
        json_patch({}, {"op": "add"})


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("spec", "containers"), "name"),
        (("spec", "containers", "ports"), "containerPort"),
        (("spec", "ports"), "port"),
        (("status", "conditions"), "type"),
        (("status", "addresses"), "type"),
        (("subsets", "addresses"), None),
        (("spec", "tolerations"), None),
    ],
)
def test_merge_keys(path: tuple[str, ...], key: str | None) -> None:
    assert merge_key_for(path) == key


POD = {
    "metadata": {"name": "p", "finalizers": ["a"], "labels": {"x": "1"}},
    "spec": {
        "containers": [
            {"name": "c1", "image": "i1", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "c2", "image": "i2"},
        ],
        "tolerations": [{"key": "t"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        (
            {"spec": {"containers": [{"name": "c2", "image": "new"}]}},
            lambda r: [c["image"] for c in r["spec"]["containers"]] == ["i1", "new"],
        ),
        (
            {"spec": {"containers": [{"name": "c3", "image": "i3"}]}},
            lambda r: [c["name"] for c in r["spec"]["containers"]] == ["c1", "c2", "c3"],
        ),
        (
            {"spec": {"containers": [{"name": "c1", "$patch": "delete"}]}},
            lambda r: [c["name"] for c in r["spec"]["containers"]] == ["c2"],
        ),
        (
            {"spec": {"containers": [{"name": "c1", "ports": [{"containerPort": 443}]}]}},
            lambda r: (
                [p["containerPort"] for p in r["spec"]["containers"][0]["ports"]] == [80, 443]
            ),
        ),
        (
            {"spec": {"tolerations": [{"key": "u"}]}},
            lambda r: r["spec"]["tolerations"] == [{"key": "u"}],
        ),
        (
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            lambda r: r["status"]["conditions"] == [{"type": "Ready", "status": "True"}],
        ),
        ({"metadata": {"finalizers": ["b"]}}, lambda r: r["metadata"]["finalizers"] == ["a", "b"]),
        (
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
            lambda r: r["metadata"]["finalizers"] == [],
        ),
        (
            {"metadata": {"labels": {"x": None, "y": "2"}}},
            lambda r: r["metadata"]["labels"] == {"y": "2"},
        ),
        (
            {"spec": {"$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}]}},
            lambda r: r["spec"] == POD["spec"],
        ),
        (
            {"spec": {"$patch": "replace", "containers": []}},
            lambda r: r["spec"] == {"containers": []},
        ),
    ],
)
def test_strategic_merge_patch(patch: dict[str, Any], check: Any) -> None:
    assert check(strategic_merge_patch(POD, patch))


def test_strategic_merge_patch_needs_merge_key() -> None:
    with pytest.raises(PatchFormatError):
        strategic_merge_patch(POD, {"spec": {"containers": [{"image": "x"}]}})
