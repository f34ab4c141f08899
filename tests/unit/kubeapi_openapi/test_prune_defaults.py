"""prune(), pruned_paths() and apply_defaults(): what a real apiserver does on decode."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.kubeapi.openapi import apply_defaults, prune, pruned_paths

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "known": {"type": "string"},
                "routes": {"type": "object", "additionalProperties": {"type": "string"}},
                "list": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "opaque": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "partly": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "inner": {"type": "object", "properties": {"k": {"type": "string"}}}
                    },
                },
                "bare": {"type": "object"},
                "allowed": {"type": "object", "additionalProperties": True},
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
            },
        },
    },
}

PRUNE_CASES = [
    # (input spec, spec after pruning, pruned paths)
    ({"known": "x"}, {"known": "x"}, []),
    ({"known": "x", "unknown": 1}, {"known": "x"}, ["spec.unknown"]),
    ({"routes": {"10.0.0.0/8": "10.0.0.1"}}, {"routes": {"10.0.0.0/8": "10.0.0.1"}}, []),
    (
        {"list": [{"name": "a", "x": 1}, {"y": 2}]},
        {"list": [{"name": "a"}, {}]},
        ["spec.list[0].x", "spec.list[1].y"],
    ),
    ({"opaque": {"a": {"b": [1]}}}, {"opaque": {"a": {"b": [1]}}}, []),
    (
        {"partly": {"free": 1, "inner": {"k": "v", "drop": 2}}},
        {"partly": {"free": 1, "inner": {"k": "v"}}},
        ["spec.partly.inner.drop"],
    ),
    ({"bare": {"a": 1}}, {"bare": {}}, ["spec.bare.a"]),
    # NB: `additionalProperties: true` keeps keys but, without a schema, not nested fields.
    ({"allowed": {"a": 1, "b": {"c": 1}}}, {"allowed": {"a": 1, "b": {}}}, ["spec.allowed.b.c"]),
    (
        {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"n": 1}, "other": 1}},
        {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"n": 1}}},
        ["spec.embedded.other"],
    ),
    # Pruning follows properties, not types: an object where a string belongs loses its
    # fields (validation then reports the type); a scalar where a list belongs is left alone.
    ({"known": {"a": 1}, "list": "nope"}, {"known": {}, "list": "nope"}, ["spec.known.a"]),
]


@pytest.mark.parametrize(("spec", "expected", "paths"), PRUNE_CASES)
def test_prune(spec, expected, paths):
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec}
    original = copy.deepcopy(obj)
    assert prune(SCHEMA, obj) == {**original, "spec": expected}
    assert pruned_paths(SCHEMA, obj) == paths
    assert obj == original, "the input must not be modified"


def test_root_identity_fields_are_never_pruned():
    obj = {"apiVersion": "v", "kind": "K", "metadata": {"anything": 1}, "status": {}}
    assert prune({"type": "object", "properties": {}}, obj) == {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"anything": 1},
    }


DEFAULTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "bridge"},
                "mtu": {"type": "integer", "default": 1500},
                "opt": {"type": "string"},
                "maybe": {"type": "string", "nullable": True, "default": "d"},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"inner": {"type": "string", "default": "in"}},
                },
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"v": {"type": "integer", "default": 7}},
                    },
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "default": "x"},
                },
            },
        },
    },
}
D_FULL = {"mode": "bridge", "mtu": 1500, "maybe": "d", "nested": {"inner": "in"}}
DEFAULT_CASES = [
    ({}, D_FULL),
    ({"mode": "l2", "mtu": 9000}, {**D_FULL, "mode": "l2", "mtu": 9000}),
    # a non-nullable null takes the default, a nullable one stays null
    ({"mode": None, "maybe": None}, {**D_FULL, "maybe": None}),
    # a non-nullable null without default is dropped
    ({"opt": None}, D_FULL),
    ({"items": [{}, {"v": 1}]}, {**D_FULL, "items": [{"v": 7}, {"v": 1}]}),
    ({"labels": {"a": None, "b": "y"}}, {**D_FULL, "labels": {"a": "x", "b": "y"}}),
    ({"nested": {"inner": "set"}}, {**D_FULL, "nested": {"inner": "set"}}),
]


@pytest.mark.parametrize(("spec", "expected"), DEFAULT_CASES)
def test_apply_defaults(spec, expected):
    obj = {"spec": spec}
    original = copy.deepcopy(obj)
    assert apply_defaults(DEFAULTING_SCHEMA, obj) == {"spec": expected}
    assert obj == original, "the input must not be modified"


def test_defaults_are_copies():
    first = apply_defaults(DEFAULTING_SCHEMA, {"spec": {}})
    first["spec"]["nested"]["inner"] = "changed"
    assert apply_defaults(DEFAULTING_SCHEMA, {"spec": {}})["spec"]["nested"]["inner"] == "in"
    nested = DEFAULTING_SCHEMA["properties"]["spec"]["properties"]["nested"]
    assert nested["default"] == {}, "the schema's default must not be modified"
