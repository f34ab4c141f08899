"""The slice of Kubernetes' CRD schema machinery our API stand-in needs: prune, default, validate.

A real kube-apiserver treats a custom resource in three steps before it reaches etcd: it *prunes*
every field the CRD's structural schema does not know, *defaults* missing fields, and *validates*
what is left (kube-openapi, a fork of go-openapi/validate). Our components write DANM objects
through ``tests/kubeapi``; if that stand-in stored whatever it was given, a field missing from
our CRDs would be silently lost on a real cluster and never noticed here. So the stand-in runs
this module, and ``tests/unit/test_examples.py`` runs it over every example manifest.

Scope is the structural subset Kubernetes accepts for ``apiextensions.k8s.io/v1`` CRDs:
``type``, ``properties``, ``required``, ``additionalProperties`` (bool or schema), ``items``,
``enum``, ``pattern``, ``minimum``/``maximum`` (+ OpenAPI 3.0 boolean ``exclusive*``),
``multipleOf``, ``minLength``/``maxLength``, ``minItems``/``maxItems``,
``minProperties``/``maxProperties``, ``format`` int32/int64, ``nullable``, ``default``,
``allOf``/``anyOf``/``oneOf``/``not`` (value validation only, as in Kubernetes), and the
``x-kubernetes-preserve-unknown-fields`` / ``-int-or-string`` / ``-embedded-resource`` extensions.
CEL rules (``x-kubernetes-validations``), list/map types and ratcheting are not implemented.

Fidelity notes (the places where "exact" has limits):

* Patterns follow Go RE2 semantics as the apiserver applies them: unanchored *search*, ``\\d``/
  ``\\w``/``\\s`` ASCII-only, and ``$`` meaning end-of-text (Python's ``$`` also matches before a
  trailing newline, so it is rewritten to ``\\Z``). Syntax RE2 lacks (look-around,
  back-references) is accepted by Python and not rejected here.
* Messages copy kube-openapi's wording wrapped in apimachinery's ``field.Error`` body, e.g.
  ``Invalid value: 5000: spec.Options.vlan in body should be less than or equal to 4094``.
  Go's ``%q``/``%#v`` renderings of odd values are approximated with JSON.
* On a type mismatch the node's other keywords are not evaluated (Go evaluates ``enum`` anyway).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "CAUSE_FORBIDDEN",
    "CAUSE_INVALID",
    "CAUSE_NOT_SUPPORTED",
    "CAUSE_REQUIRED",
    "CAUSE_TOO_LONG",
    "CAUSE_TOO_MANY",
    "CAUSE_TYPE_INVALID",
    "FieldError",
    "apply_defaults",
    "prune",
    "pruned_paths",
    "structural_errors",
    "validate",
]

Schema = Mapping[str, Any]

# NB: Kubernetes metav1.CauseType strings; clients (kubectl, our KubeError mapping) key on them.
CAUSE_REQUIRED: Final = "FieldValueRequired"
CAUSE_INVALID: Final = "FieldValueInvalid"
CAUSE_NOT_SUPPORTED: Final = "FieldValueNotSupported"
CAUSE_TYPE_INVALID: Final = "FieldValueTypeInvalid"
CAUSE_TOO_LONG: Final = "FieldValueTooLong"
CAUSE_TOO_MANY: Final = "FieldValueTooMany"
CAUSE_FORBIDDEN: Final = "FieldValueForbidden"

# NB: the apiserver never prunes these at the root; metadata is handled by ObjectMeta rules.
_ROOT_KEPT: Final = frozenset({"apiVersion", "kind", "metadata"})
_TYPES: Final = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_JUNCTORS: Final = ("allOf", "anyOf", "oneOf", "not")
_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)

# Every keyword structural_errors() accepts; anything else is reported (typos included).
_KNOWN_KEYWORDS: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "nullable",
        "default",
        "example",
        "externalDocs",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)
# NB: keywords a structural schema may not carry inside a junctor (rule 3 of the docs).
_FORBIDDEN_IN_JUNCTORS: Final = (
    "description",
    "type",
    "default",
    "additionalProperties",
    "nullable",
)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure, shaped like a ``metav1.StatusCause``.

    ``field`` is the dotted JSON path (``spec.Options.vlan``, ``hostDevices[0].name``), ``type``
    a Kubernetes CauseType, ``message`` the body apimachinery's ``field.Error`` would print.
    """

    field: str
    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# --------------------------------------------------------------------------------------------
# Small helpers: paths, Go-ish rendering, JSON typing


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _json_type(value: Any) -> str:
    """The JSON type name go-openapi reports for ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_integer(value: Any) -> bool:
    # NB: JSON `5.0` decodes to float64 in Go and still passes `type: integer` there.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _matches_type(value: Any, type_name: str) -> bool:
    match type_name:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "integer":
            return _is_integer(value)
        case "number":
            return _is_number(value)
        case "boolean":
            return isinstance(value, bool)
    return False


def _go_number(number: Any) -> str:
    """Render a number the way Go's ``%v`` prints an int64/float64."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _go_value(value: Any) -> str:
    """Render a bad value as ``field.Error.ErrorBody`` does (nil prints as the string "null")."""
    if value is None:
        return _go_quote("null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_quote(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: unlike ``==``, ``true`` is not ``1`` (but ``1`` is ``1.0``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and bool(left == right)


def _to_python_regex(pattern: str) -> str:
    """Rewrite RE2 end-of-text anchors for Python (``$`` and ``\\z`` → ``\\Z``)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            out.append("\\Z" if escaped == "z" and not in_class else char + escaped)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # NB: a ']' right after '[' or '[^' is a literal member, not the class end.
            lead = pattern[i + 1 : i + 3]
            if lead.startswith("]"):
                out.append("[]")
                i += 2
                continue
            if lead == "^]":
                out.append("[^]")
                i += 3
                continue
        elif char == "$":
            out.append("\\Z")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(_to_python_regex(pattern), re.ASCII)


def _schema_types(schema: Schema) -> str | None:
    type_name = schema.get("type")
    return type_name if isinstance(type_name, str) and type_name else None


# --------------------------------------------------------------------------------------------
# Pruning


def _prune_into(
    value: Any, schema: Schema | None, path: str, removed: list[str], root: bool
) -> Any:
    """Kubernetes' pruning walk: it follows ``properties``/``additionalProperties``/``items``
    whatever ``type`` says, and a node without a schema keeps no object fields at all."""
    preserve = schema is not None and schema.get("x-kubernetes-preserve-unknown-fields") is True
    if isinstance(value, dict):
        properties: Mapping[str, Any] = (schema or {}).get("properties") or {}
        additional = (schema or {}).get("additionalProperties")
        embedded = schema is not None and schema.get("x-kubernetes-embedded-resource") is True
        for key in list(value):
            if (root or embedded) and key in _ROOT_KEPT:
                continue
            if key in properties:
                sub: Schema | None = properties[key]
            elif additional is not None:
                # NB: `additionalProperties: true` keeps the key but, having no schema, not
                # the fields of an object under it (only preserve-unknown-fields does that).
                sub = additional if isinstance(additional, Mapping) else None
            elif preserve:
                continue
            else:
                del value[key]
                removed.append(_child(path, key))
                continue
            value[key] = _prune_into(value[key], sub, _child(path, key), removed, False)
    elif isinstance(value, list):
        items = (schema or {}).get("items")
        item_schema = items if isinstance(items, Mapping) else None
        if item_schema is None and preserve:
            return value
        for i, item in enumerate(value):
            value[i] = _prune_into(item, item_schema, _index(path, i), removed, False)
    return value


def prune(schema: Schema, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``obj`` without the fields ``schema`` does not specify.

    Top-level ``apiVersion``, ``kind`` and ``metadata`` are always kept.
    """
    return _prune_copy(schema, obj)[0]


def pruned_paths(schema: Schema, obj: Mapping[str, Any]) -> list[str]:
    """The paths ``prune`` would drop, in document order (for "unknown field" warnings)."""
    return _prune_copy(schema, obj)[1]


def _prune_copy(schema: Schema, obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    removed: list[str] = []
    result = _prune_into(copy.deepcopy(dict(obj)), schema, "", removed, True)
    return result, removed


# --------------------------------------------------------------------------------------------
# Defaulting


def _non_nullable_null(value: Any, schema: Schema | None) -> bool:
    return value is None and schema is not None and schema.get("nullable") is not True


def _drop_nulls_without_default(value: Any, schema: Schema | None) -> None:
    """Kubernetes' PruneNonNullableNullsWithoutDefaults: ``x: null`` on a non-nullable field
    without a default is removed (it would otherwise fail validation for no good reason)."""
    if schema is None:
        return
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key in list(value):
            sub = properties.get(key)
            if sub is None and isinstance(additional, Mapping):
                sub = additional
            if _non_nullable_null(value[key], sub) and sub is not None and "default" not in sub:
                del value[key]
            else:
                _drop_nulls_without_default(value[key], sub)
    elif isinstance(value, list):
        items = schema.get("items")
        for item in value:
            _drop_nulls_without_default(item, items if isinstance(items, Mapping) else None)


def _default_into(value: Any, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for key, sub in properties.items():
            if "default" in sub and (key not in value or _non_nullable_null(value[key], sub)):
                value[key] = copy.deepcopy(sub["default"])
        additional = schema.get("additionalProperties")
        for key in list(value):
            if key in properties:
                _default_into(value[key], properties[key])
            elif isinstance(additional, Mapping):
                if _non_nullable_null(value[key], additional) and "default" in additional:
                    value[key] = copy.deepcopy(additional["default"])
                _default_into(value[key], additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                if _non_nullable_null(item, items) and "default" in items:
                    value[i] = copy.deepcopy(items["default"])
                _default_into(value[i], items)


def apply_defaults(schema: Schema, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``obj`` with schema defaults filled in, as the apiserver does on decode.

    Non-nullable ``null`` fields are dropped first, or replaced by their default if they have
    one. Defaults are deep-copied and then defaulted themselves.
    """
    result = copy.deepcopy(dict(obj))
    _drop_nulls_without_default(result, schema)
    _default_into(result, schema)
    return result


# --------------------------------------------------------------------------------------------
# Validation


class _Validator:
    """Collects FieldErrors for one object; one instance per validate() call."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def _add(self, path: str, cause: str, message: str) -> None:
        self.errors.append(FieldError(path, cause, message))

    def _invalid(self, path: str, value: Any, detail: str) -> None:
        self._add(
            path, CAUSE_INVALID, f"Invalid value: {_go_value(value)}: {path} in body {detail}"
        )

    def _type_invalid(self, path: str, value: Any, expected: str) -> None:
        actual = _json_type(value)
        self._add(
            path,
            CAUSE_TYPE_INVALID,
            f"Invalid value: {_go_quote(actual)}: {path} in body must be of type {expected}: "
            f"{_go_quote(actual)}",
        )

    def node(self, value: Any, schema: Schema, path: str) -> None:
        if value is None:
            if schema.get("nullable") is True:
                return
            expected = _schema_types(schema)
            if expected is None and schema.get("x-kubernetes-int-or-string") is True:
                expected = "integer,string"
            if expected is not None:
                self._type_invalid(path, value, expected)
            return
        if not self._type_ok(value, schema, path):
            return
        self._junctors(value, schema, path)
        self._enum(value, schema, path)
        if isinstance(value, str):
            self._string(value, schema, path)
        elif _is_number(value):
            self._number(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, dict):
            self._object(value, schema, path)

    def _type_ok(self, value: Any, schema: Schema, path: str) -> bool:
        expected = _schema_types(schema)
        if expected is not None:
            if not _matches_type(value, expected):
                self._type_invalid(path, value, expected)
                return False
            return True
        if schema.get("x-kubernetes-int-or-string") is True and not (
            _is_integer(value) or isinstance(value, str)
        ):
            self._type_invalid(path, value, "integer,string")
            return False
        return True

    def _junctors(self, value: Any, schema: Schema, path: str) -> None:
        for sub in schema.get("allOf") or ():
            self.node(value, sub, path)
        any_of = schema.get("anyOf")
        if any_of and not any(_passes(value, sub, path) for sub in any_of):
            self._invalid(path, value, "must validate at least one schema (anyOf)")
        one_of = schema.get("oneOf")
        if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
            self._invalid(path, value, "must validate one and only one schema (oneOf)")
        negated = schema.get("not")
        if isinstance(negated, Mapping) and _passes(value, negated, path):
            self._invalid(path, value, "must not validate the schema (not)")

    def _enum(self, value: Any, schema: Schema, path: str) -> None:
        allowed = schema.get("enum")
        if allowed is None or any(_json_equal(value, option) for option in allowed):
            return
        # NB: apimachinery quotes every supported value, strings and JSON-encoded others alike.
        rendered = ", ".join(
            _go_quote(option if isinstance(option, str) else json.dumps(option))
            for option in allowed
        )
        self._add(
            path,
            CAUSE_NOT_SUPPORTED,
            f"Unsupported value: {_go_value(value)}: supported values: {rendered}",
        )

    def _string(self, value: str, schema: Schema, path: str) -> None:
        max_length = schema.get("maxLength")
        if max_length is not None and len(value) > max_length:
            self._add(path, CAUSE_TOO_LONG, f"Too long: may not be more than {max_length} bytes")
        min_length = schema.get("minLength")
        if min_length is not None and len(value) < min_length:
            self._invalid(path, value, f"should be at least {min_length} chars long")
        pattern = schema.get("pattern")
        if pattern is not None and _compile(pattern).search(value) is None:
            self._invalid(path, value, f"should match '{pattern}'")

    def _number(self, value: float, schema: Schema, path: str) -> None:
        maximum = schema.get("maximum")
        if maximum is not None:
            if schema.get("exclusiveMaximum") is True and value >= maximum:
                self._invalid(path, value, f"should be less than {_go_number(maximum)}")
            elif value > maximum:
                self._invalid(path, value, f"should be less than or equal to {_go_number(maximum)}")
        minimum = schema.get("minimum")
        if minimum is not None:
            if schema.get("exclusiveMinimum") is True and value <= minimum:
                self._invalid(path, value, f"should be greater than {_go_number(minimum)}")
            elif value < minimum:
                self._invalid(
                    path, value, f"should be greater than or equal to {_go_number(minimum)}"
                )
        multiple_of = schema.get("multipleOf")
        if multiple_of and not _is_multiple(value, multiple_of):
            self._invalid(path, value, f"should be a multiple of {_go_number(multiple_of)}")
        bounds = {"int32": _INT32, "int64": _INT64}.get(schema.get("format") or "")
        if bounds is not None and _is_integer(value) and not bounds[0] <= value <= bounds[1]:
            shown = _go_number(value)
            self._add(
                path,
                CAUSE_TYPE_INVALID,
                f"Invalid value: {_go_quote(shown)}: {path} in body must be of type "
                f"{schema['format']}: {_go_quote(shown)}",
            )

    def _array(self, value: list[Any], schema: Schema, path: str) -> None:
        max_items = schema.get("maxItems")
        if max_items is not None and len(value) > max_items:
            self._add(
                path, CAUSE_TOO_MANY, f"Too many: {len(value)}: must have at most {max_items} items"
            )
        min_items = schema.get("minItems")
        if min_items is not None and len(value) < min_items:
            self._invalid(path, value, f"should have at least {min_items} items")
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                self.node(item, items, _index(path, i))

    def _object(self, value: dict[str, Any], schema: Schema, path: str) -> None:
        max_properties = schema.get("maxProperties")
        if max_properties is not None and len(value) > max_properties:
            self._add(
                path,
                CAUSE_TOO_MANY,
                f"Too many: {len(value)}: must have at most {max_properties} items",
            )
        min_properties = schema.get("minProperties")
        if min_properties is not None and len(value) < min_properties:
            self._invalid(path, value, f"should have at least {min_properties} properties")
        for key in schema.get("required") or ():
            if key not in value:
                self._add(_child(path, key), CAUSE_REQUIRED, "Required value")
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                self.node(item, properties[key], _child(path, key))
            elif isinstance(additional, Mapping):
                self.node(item, additional, _child(path, key))
            elif additional is False:
                where = _child(path, key)
                self._add(
                    where, CAUSE_FORBIDDEN, f"Forbidden: {where} in body is a forbidden property"
                )
        if schema.get("x-kubernetes-embedded-resource") is True:
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    self._add(_child(path, key), CAUSE_REQUIRED, "Required value")


def _is_multiple(value: float, factor: float) -> bool:
    if _is_integer(value) and _is_integer(factor):
        return int(value) % int(factor) == 0
    quotient = value / factor
    return math.isclose(quotient, round(quotient), rel_tol=0.0, abs_tol=1e-9)


def _passes(value: Any, schema: Schema, path: str) -> bool:
    probe = _Validator()
    probe.node(value, schema, path)
    return not probe.errors


def validate(schema: Schema, obj: Any) -> list[FieldError]:
    """Validate ``obj`` (normally an object, any JSON value works) against ``schema``.

    An empty list means valid. Unknown fields are not errors: the apiserver prunes them first
    (see ``prune``).
    """
    checker = _Validator()
    checker.node(obj, schema, "")
    return checker.errors


# --------------------------------------------------------------------------------------------
# Structural-schema checks (for our CRD files)


def structural_errors(schema: Schema) -> list[str]:
    """Why ``schema`` would not be accepted as a structural ``openAPIV3Schema``; ``[]`` if it is.

    Covers the documented structural rules (types everywhere outside junctors, nothing in a
    junctor that the outer schema lacks, no type/description/default/additionalProperties/
    nullable inside junctors, metadata restricted to name/generateName) and the CRD-level
    restrictions that bite in practice: ``additionalProperties`` false or next to
    ``properties``, ``x-kubernetes-preserve-unknown-fields: false``, ``$ref``, ``uniqueItems``,
    array-form ``items``, unknown keywords, invalid patterns, defaults that would not survive
    pruning and validation.
    """
    problems: list[str] = []
    _check_node(schema, "", problems.append, at_root=True, in_junctor=False)
    if _schema_types(schema) != "object" and "type" in schema:
        problems.append("type: Invalid value: must be object at the root")
    return problems


def _check_node(
    schema: Any, path: str, report: Callable[[str], None], *, at_root: bool, in_junctor: bool
) -> None:
    def at(key: str) -> str:
        return _child(path, key)

    if not isinstance(schema, Mapping):
        report(f"{path or '<root>'}: Invalid value: a schema must be an object")
        return
    for keyword in schema:
        if keyword not in _KNOWN_KEYWORDS:
            what = "is not supported" if keyword.startswith("$") else "is not a known keyword"
            report(f"{at(keyword)}: Forbidden: {keyword} {what}")
    type_name = schema.get("type")
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if type_name is not None and type_name not in _TYPES:
        report(f"{at('type')}: Unsupported value: {_go_value(type_name)}")
    if in_junctor:
        for keyword in _FORBIDDEN_IN_JUNCTORS:
            if keyword in schema:
                report(f"{at(keyword)}: Forbidden: must be empty to be structural")
    elif not type_name and not int_or_string and preserve is not True:
        where = "at the root" if at_root else "for specified object fields or array items"
        report(f"{at('type')}: Required value: must not be empty {where}")
    if int_or_string and type_name:
        report(f"{at('type')}: Invalid value: must be empty if x-kubernetes-int-or-string is true")
    if preserve is not None and preserve is not True:
        report(
            f"{at('x-kubernetes-preserve-unknown-fields')}: Invalid value: "
            "must be true or undefined"
        )
    if schema.get("x-kubernetes-embedded-resource") is True:
        if type_name != "object":
            report(f"{at('type')}: Required value: must be object if embedded-resource is true")
        if not schema.get("properties") and preserve is not True:
            report(
                f"{at('x-kubernetes-preserve-unknown-fields')}: Required value: must be true if "
                "x-kubernetes-embedded-resource is true and no properties are given"
            )
    additional = schema.get("additionalProperties")
    if additional is False:
        report(f"{at('additionalProperties')}: Forbidden: must not be false")
    if additional is not None and schema.get("properties"):
        report(
            f"{at('additionalProperties')}: Forbidden: additionalProperties and properties are "
            "mutual exclusive"
        )
    if schema.get("uniqueItems") is True:
        report(f"{at('uniqueItems')}: Forbidden: uniqueItems cannot be set to true")
    pattern = schema.get("pattern")
    if pattern is not None:
        try:
            _compile(pattern)
        except (re.error, TypeError) as exc:
            report(f"{at('pattern')}: Invalid value: must be a valid regular expression: {exc}")
    items = schema.get("items")
    if isinstance(items, list):
        report(f"{at('items')}: Forbidden: items must be a schema object and not an array")
    elif items is not None:
        _check_node(items, at("items"), report, at_root=False, in_junctor=in_junctor)
    elif type_name == "array" and not in_junctor:
        report(f"{at('items')}: Required value: must be specified for arrays")
    for key, sub in (schema.get("properties") or {}).items():
        sub_path = f"{path}.properties[{key}]" if path else f"properties[{key}]"
        if at_root and key == "metadata":
            _check_metadata(sub, sub_path, report)
        _check_node(sub, sub_path, report, at_root=False, in_junctor=in_junctor)
    if isinstance(additional, Mapping):
        _check_node(
            additional, at("additionalProperties"), report, at_root=False, in_junctor=in_junctor
        )
    for junctor in _JUNCTORS:
        branches = schema.get(junctor)
        if branches is None:
            continue
        for i, branch in enumerate([branches] if junctor == "not" else branches):
            branch_path = at(junctor) if junctor == "not" else _index(at(junctor), i)
            # NB: the documented int-or-string exception: `anyOf: [{type: integer},
            # {type: string}]` may carry types inside the junctor.
            if not (int_or_string and branch in ({"type": "integer"}, {"type": "string"})):
                _check_node(branch, branch_path, report, at_root=False, in_junctor=True)
            _check_junctor_covered(branch, schema, branch_path, report, int_or_string)
    if "default" in schema and not in_junctor:
        _check_default(schema, path, report)


def _check_metadata(schema: Any, path: str, report: Callable[[str], None]) -> None:
    if not isinstance(schema, Mapping):
        return
    extra = set(schema.get("properties") or {}) - {"name", "generateName"}
    if extra or set(schema) - {"type", "properties", "description"}:
        report(f"{path}: Forbidden: must not specify anything other than name and generateName")


def _check_junctor_covered(
    branch: Any, outer: Schema, path: str, report: Callable[[str], None], int_or_string: bool
) -> None:
    """Structural rule 2: every field/item a junctor talks about is also specified outside."""
    if not isinstance(branch, Mapping):
        return
    if int_or_string and branch.get("type") in ("integer", "string") and len(branch) == 1:
        return
    outer_properties: Mapping[str, Any] = outer.get("properties") or {}
    outer_additional = outer.get("additionalProperties")
    for key, sub in (branch.get("properties") or {}).items():
        if key in outer_properties:
            _check_junctor_covered(
                sub, outer_properties[key], f"{path}.properties[{key}]", report, False
            )
        elif isinstance(outer_additional, Mapping):
            _check_junctor_covered(
                sub, outer_additional, f"{path}.properties[{key}]", report, False
            )
        else:
            report(
                f"{path}.properties[{key}]: Required value: "
                "must be specified outside of the junctor"
            )
    if "items" in branch:
        outer_items = outer.get("items")
        if not isinstance(outer_items, Mapping):
            report(f"{path}.items: Required value: must be specified outside of the junctor")
        else:
            _check_junctor_covered(branch["items"], outer_items, f"{path}.items", report, False)


def _check_default(schema: Schema, path: str, report: Callable[[str], None]) -> None:
    default = schema["default"]
    if default is None and schema.get("nullable") is True:
        return
    errors = _Validator()
    errors.node(default, schema, "default")
    for error in errors.errors:
        report(f"{_child(path, 'default')}: Invalid value: {error.message}")
    removed: list[str] = []
    _prune_into(copy.deepcopy(default), schema, "", removed, False)
    if removed:
        report(f"{_child(path, 'default')}: Invalid value: would be pruned at {', '.join(removed)}")
