"""validate(): each keyword accepts what it should and words refusals like kube-apiserver."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.openapi import FieldError, validate

INT32_MAX = 2**31 - 1


def _at(field_schema: dict[str, Any]) -> dict[str, Any]:
    """A root object schema with ``field_schema`` at ``spec.f``."""
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"f": field_schema}}},
    }


def _errors(field_schema: dict[str, Any], value: Any) -> list[FieldError]:
    return validate(_at(field_schema), {"spec": {"f": value}})


VALID = [
    ({"type": "string"}, ""),
    ({"type": "string"}, "x"),
    ({"type": "integer"}, 0),
    ({"type": "integer"}, -7),
    ({"type": "integer"}, 5.0),  # NB: Go decodes 5.0 as float64 and still calls it an integer
    ({"type": "number"}, 1.5),
    ({"type": "number"}, 2),
    ({"type": "boolean"}, False),
    ({"type": "array"}, []),
    ({"type": "object"}, {}),
    ({"type": "string", "nullable": True}, None),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 1),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 3),
    ({"type": "number", "exclusiveMaximum": True, "maximum": 3}, 2.99),
    ({"type": "number", "exclusiveMinimum": True, "minimum": 3}, 3.01),
    ({"type": "integer", "multipleOf": 4}, 12),
    ({"type": "number", "multipleOf": 0.1}, 0.3),
    ({"type": "integer", "format": "int32"}, INT32_MAX),
    ({"type": "integer", "format": "int64"}, 2**63 - 1),
    ({"type": "string", "minLength": 2, "maxLength": 3}, "ab"),
    ({"type": "string", "maxLength": 3}, "äöü"),  # NB: characters, not bytes
    ({"type": "string", "pattern": "b"}, "abc"),  # unanchored, like RE2's MatchString
    ({"type": "string", "pattern": "^a.c$"}, "abc"),
    ({"type": "string", "pattern": "^[$]x$"}, "$x"),  # '$' inside a class stays literal
    ({"type": "string", "pattern": r"^a\$$"}, "a$"),
    ({"type": "string", "enum": ["a", "b"]}, "b"),
    ({"type": "integer", "enum": [1, 2]}, 2),
    ({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}}, ["a"]),
    ({"type": "object", "minProperties": 1, "maxProperties": 1}, {"k": 1}),
    ({"type": "object", "additionalProperties": {"type": "string"}}, {"a": "x", "b": "y"}),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}, {"a": ""}),
    ({"x-kubernetes-int-or-string": True}, 8080),
    ({"x-kubernetes-int-or-string": True}, "http"),
    ({"x-kubernetes-preserve-unknown-fields": True}, {"any": ["thing", 1]}),
    ({"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]}, 3),
    ({"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]}, 11),
    ({"type": "integer", "oneOf": [{"minimum": 10}, {"maximum": 0}]}, -1),
    ({"type": "integer", "not": {"minimum": 10}}, 9),
    (
        {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}},
        {"apiVersion": "v1", "kind": "Pod"},
    ),
]


@pytest.mark.parametrize(("field_schema", "value"), VALID)
def test_valid_values_pass(field_schema, value):
    assert _errors(field_schema, value) == []


P = "spec.f"
INVALID: list[tuple[dict[str, Any], Any, str, str, str]] = [
    # (schema, value, error path, cause type, message)
    (
        {"type": "integer"},
        "5",
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "string": {P} in body must be of type integer: "string"',
    ),
    (
        {"type": "integer"},
        True,
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "boolean": {P} in body must be of type integer: "boolean"',
    ),
    (
        {"type": "integer"},
        1.5,
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "number": {P} in body must be of type integer: "number"',
    ),
    (
        {"type": "string"},
        {"a": 1},
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "object": {P} in body must be of type string: "object"',
    ),
    (
        {"type": "object"},
        [],
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "array": {P} in body must be of type object: "array"',
    ),
    (
        {"type": "string"},
        None,
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "null": {P} in body must be of type string: "null"',
    ),
    (
        {"type": "integer", "maximum": 4094},
        5000,
        P,
        "FieldValueInvalid",
        f"Invalid value: 5000: {P} in body should be less than or equal to 4094",
    ),
    (
        {"type": "integer", "minimum": 1},
        0,
        P,
        "FieldValueInvalid",
        f"Invalid value: 0: {P} in body should be greater than or equal to 1",
    ),
    (
        {"type": "number", "maximum": 3, "exclusiveMaximum": True},
        3,
        P,
        "FieldValueInvalid",
        f"Invalid value: 3: {P} in body should be less than 3",
    ),
    (
        {"type": "number", "minimum": 0.5, "exclusiveMinimum": True},
        0.5,
        P,
        "FieldValueInvalid",
        f"Invalid value: 0.5: {P} in body should be greater than 0.5",
    ),
    (
        {"type": "integer", "multipleOf": 4},
        6,
        P,
        "FieldValueInvalid",
        f"Invalid value: 6: {P} in body should be a multiple of 4",
    ),
    (
        {"type": "integer", "format": "int32"},
        INT32_MAX + 1,
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "2147483648": {P} in body must be of type int32: "2147483648"',
    ),
    (
        {"type": "string", "pattern": "^[a-z]+$"},
        "ab1",
        P,
        "FieldValueInvalid",
        f"Invalid value: \"ab1\": {P} in body should match '^[a-z]+$'",
    ),
    (
        {"type": "string", "pattern": "^a$"},
        "a\n",  # NB: Python's `$` would match here, RE2's does not
        P,
        "FieldValueInvalid",
        f"Invalid value: \"a\\n\": {P} in body should match '^a$'",
    ),
    (
        {"type": "string", "pattern": r"^\d$"},
        "٣",  # NB: an Arabic-Indic digit: Python's \d takes it, RE2's \d is ASCII only
        P,
        "FieldValueInvalid",
        f"Invalid value: \"٣\": {P} in body should match '^\\d$'",
    ),
    (
        {"type": "string", "maxLength": 2},
        "abc",
        P,
        "FieldValueTooLong",
        "Too long: may not be more than 2 bytes",
    ),
    (
        {"type": "string", "minLength": 2},
        "a",
        P,
        "FieldValueInvalid",
        f'Invalid value: "a": {P} in body should be at least 2 chars long',
    ),
    (
        {"type": "string", "enum": ["vlan", "vxlan"]},
        "vlon",
        P,
        "FieldValueNotSupported",
        'Unsupported value: "vlon": supported values: "vlan", "vxlan"',
    ),
    (
        {"type": "integer", "enum": [1, 2]},
        3,
        P,
        "FieldValueNotSupported",
        'Unsupported value: 3: supported values: "1", "2"',
    ),
    (
        {"enum": [1]},
        True,  # NB: JSON true is not 1
        P,
        "FieldValueNotSupported",
        'Unsupported value: true: supported values: "1"',
    ),
    (
        {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        ["a", "b"],
        P,
        "FieldValueTooMany",
        "Too many: 2: must have at most 1 items",
    ),
    (
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        [],
        P,
        "FieldValueInvalid",
        f"Invalid value: []: {P} in body should have at least 1 items",
    ),
    (
        {"type": "array", "items": {"type": "string"}},
        ["a", 2],
        f"{P}[1]",
        "FieldValueTypeInvalid",
        f'Invalid value: "integer": {P}[1] in body must be of type string: "integer"',
    ),
    (
        {"type": "object", "maxProperties": 1},
        {"a": 1, "b": 2},
        P,
        "FieldValueTooMany",
        "Too many: 2: must have at most 1 items",
    ),
    (
        {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        {},
        f"{P}.name",
        "FieldValueRequired",
        "Required value",
    ),
    (
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"10.0.0.0/8": 1},
        f"{P}.10.0.0.0/8",
        "FieldValueTypeInvalid",
        f'Invalid value: "integer": {P}.10.0.0.0/8 in body must be of type string: "integer"',
    ),
    (
        {"type": "object", "additionalProperties": False},
        {"x": 1},
        f"{P}.x",
        "FieldValueForbidden",
        f"Forbidden: {P}.x in body is a forbidden property",
    ),
    (
        {"x-kubernetes-int-or-string": True},
        1.5,
        P,
        "FieldValueTypeInvalid",
        f'Invalid value: "number": {P} in body must be of type integer,string: "number"',
    ),
    (
        {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]},
        5,
        P,
        "FieldValueInvalid",
        f"Invalid value: 5: {P} in body must validate at least one schema (anyOf)",
    ),
    (
        {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
        5,
        P,
        "FieldValueInvalid",
        f"Invalid value: 5: {P} in body must validate one and only one schema (oneOf)",
    ),
    (
        {"type": "integer", "not": {"minimum": 10}},
        10,
        P,
        "FieldValueInvalid",
        f"Invalid value: 10: {P} in body must not validate the schema (not)",
    ),
    (
        {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
        7,
        P,
        "FieldValueInvalid",
        f"Invalid value: 7: {P} in body should be less than or equal to 5",
    ),
    (
        {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}},
        {"kind": "Pod"},
        f"{P}.apiVersion",
        "FieldValueRequired",
        "Required value",
    ),
]


@pytest.mark.parametrize(("field_schema", "value", "path", "cause", "message"), INVALID)
def test_invalid_values_are_refused_with_apiserver_wording(
    field_schema, value, path, cause, message
):
    assert _errors(field_schema, value) == [FieldError(path, cause, message)]


def test_field_error_renders_like_a_status_cause():
    error = FieldError("spec.Options.vlan", "FieldValueInvalid", "Invalid value: 5000: x")
    assert str(error) == "spec.Options.vlan: Invalid value: 5000: x"


def test_unknown_fields_are_not_validation_errors():
    assert validate(_at({"type": "string"}), {"spec": {"f": "x", "other": 1}, "extra": 2}) == []


def test_errors_are_collected_from_every_field_in_document_order():
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "maximum": 1},
                    "b": {"type": "string"},
                },
            }
        },
    }
    errors = validate(schema, {"spec": {"a": 2, "b": 3}})
    assert [(e.field, e.type) for e in errors] == [
        ("spec.a", "FieldValueInvalid"),
        ("spec.b", "FieldValueTypeInvalid"),
    ]
    assert [(e.field, e.type) for e in validate(schema, {})] == [("spec", "FieldValueRequired")]


def test_nested_type_mismatch_stops_at_the_mismatching_node():
    schema = _at({"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}})
    [error] = validate(schema, {"spec": {"f": "not an object"}})
    assert error.field == "spec.f"
