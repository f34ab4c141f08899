"""structural_errors(): the schemas kube-apiserver accepts for v1 CRDs, and the ones it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.openapi import structural_errors


def _root(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


STRUCTURAL = [
    _root(),
    _root(metadata={"type": "object"}),
    _root(
        metadata={
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 10}},
        }
    ),
    _root(spec={"type": "object", "additionalProperties": {"type": "string"}}),
    _root(spec={"type": "array", "items": {"type": "integer", "minimum": 0}}),
    _root(spec={"x-kubernetes-preserve-unknown-fields": True}),
    _root(spec={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    _root(
        port={
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    ),
    _root(
        spec={
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        }
    ),
    _root(
        spec={
            "type": "object",
            "properties": {"a": {"type": "integer"}},
            "anyOf": [{"properties": {"a": {"minimum": 1}}}],
        }
    ),
    _root(
        raw={
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    ),
    _root(mode={"type": "string", "enum": ["a", "b"], "default": "a"}),
    _root(opt={"type": "object", "properties": {"x": {"type": "string"}}, "default": {"x": "1"}}),
    _root(maybe={"type": "string", "nullable": True, "default": None}),
]


@pytest.mark.parametrize("schema", STRUCTURAL)
def test_structural_schemas_pass(schema):
    assert structural_errors(schema) == []


NOT_STRUCTURAL = [
    # (schema, a fragment the report must contain)
    ({"properties": {}}, "type: Required value: must not be empty at the root"),
    ({"type": "string"}, "must be object at the root"),
    (_root(spec={"properties": {}}), "properties[spec].type: Required value"),
    (_root(spec={"type": "array"}), "properties[spec].items: Required value"),
    (_root(spec={"type": "array", "items": {}}), "properties[spec].items.type: Required value"),
    (
        _root(spec={"type": "object", "additionalProperties": {}}),
        "properties[spec].additionalProperties.type: Required value",
    ),
    (_root(spec={"type": "thing"}), "properties[spec].type: Unsupported value"),
    (
        _root(spec={"type": "object", "additionalProperties": False}),
        "additionalProperties: Forbidden: must not be false",
    ),
    (
        _root(
            spec={
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            }
        ),
        "additionalProperties and properties are mutual exclusive",
    ),
    (
        _root(spec={"type": "object", "x-kubernetes-preserve-unknown-fields": False}),
        "must be true or undefined",
    ),
    (
        _root(spec={"type": "string", "x-kubernetes-int-or-string": True}),
        "must be empty if x-kubernetes-int-or-string is true",
    ),
    (
        _root(spec={"type": "integer", "anyOf": [{"type": "integer"}]}),
        "anyOf[0].type: Forbidden: must be empty to be structural",
    ),
    (
        _root(spec={"type": "string", "allOf": [{"description": "x"}]}),
        "allOf[0].description: Forbidden",
    ),
    (
        _root(spec={"type": "object", "oneOf": [{"properties": {"a": {"minimum": 1}}}]}),
        "oneOf[0].properties[a]: Required value: must be specified outside",
    ),
    (
        _root(spec={"type": "object", "not": {"items": {"minimum": 1}}}),
        "not.items: Required value: must be specified outside",
    ),
    (
        _root(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
        "properties[metadata]: Forbidden: must not specify anything other than name",
    ),
    (_root(spec={"$ref": "#/definitions/x"}), "$ref is not supported"),
    (_root(spec={"type": "string", "requried": True}), "requried is not a known keyword"),
    (
        _root(spec={"type": "array", "items": [{"type": "string"}]}),
        "items must be a schema object and not an array",
    ),
    (
        _root(spec={"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        "uniqueItems: Forbidden",
    ),
    (_root(spec={"type": "string", "pattern": "("}), "must be a valid regular expression"),
    (
        _root(spec={"type": "object", "x-kubernetes-embedded-resource": True}),
        "must be true if x-kubernetes-embedded-resource is true",
    ),
    (
        _root(spec={"type": "integer", "maximum": 3, "default": 5}),
        "properties[spec].default: Invalid value: Invalid value: 5:",
    ),
    (
        _root(spec={"type": "object", "properties": {}, "default": {"x": 1}}),
        "properties[spec].default: Invalid value: would be pruned at x",
    ),
]


@pytest.mark.parametrize(("schema", "fragment"), NOT_STRUCTURAL)
def test_non_structural_schemas_are_reported(schema, fragment):
    problems = structural_errors(schema)
    assert any(fragment in problem for problem in problems), problems
