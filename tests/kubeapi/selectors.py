"""Label and field selectors, parsed and matched the way kube-apiserver does it.

Pure functions over plain dicts; the server turns :class:`SelectorError` into a 400
BadRequest, whose message a caller such as kubectl shows verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """The selector string cannot be parsed or names an unsupported field."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        # NB: gt/lt compare integers; a non-integer label value never matches.
        try:
            number = int(value) if value is not None else None
        except ValueError:
            return False
        if number is None:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=|>|<)\s*(.*?)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside ``( )`` so ``k in (a,b),x`` is two requirements."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _check_value(value: str, selector: str) -> str:
    if len(value) > 63 or not re.fullmatch(_VALUE, value):
        raise SelectorError(
            f'unable to parse requirement: values[0][{selector}]: Invalid value: "{value}": '
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return value


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1``; empty text selects everything."""
    if not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        if match := _SET_RE.match(part):
            values = tuple(v.strip() for v in match.group(4).split(",") if v.strip())
            for value in values:
                _check_value(value, match.group(1))
            if not values:
                raise SelectorError(f"unable to parse requirement: {part.strip()}: no values")
            requirements.append(Requirement(match.group(1), match.group(3), values))
        elif match := _CMP_RE.match(part):
            key, op, value = match.group(1), match.group(3), match.group(4)
            if op in (">", "<"):
                if not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                        f"must be an integer: {value!r}"
                    )
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                op = "=" if op == "==" else op
                requirements.append(Requirement(key, op, (_check_value(value, key),)))
        elif match := _EXISTS_RE.match(part):
            op = "!" if match.group(1) else "exists"
            requirements.append(Requirement(match.group(2), op))
        else:
            raise SelectorError(f"unable to parse requirement: found '{part.strip()}'")
    return requirements


def labels_match(requirements: list[Requirement], labels: dict[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    equal: bool


def parse_field_selector(
    text: str, supported: tuple[str, ...], *, custom: bool
) -> list[FieldRequirement]:
    """Parse ``a=b,c!=d``; an unsupported field is an error worded like the real server's."""
    if not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = match.groups()
        if name not in supported:
            if custom:
                # NB: apimachinery DefaultMetaV1FieldSelectorConversion (CRs) wording.
                raise SelectorError(
                    f'"{name}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'
                )
            raise SelectorError(f"field label not supported: {name}")
        requirements.append(FieldRequirement(name, value, op != "!="))
    return requirements


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a dotted field, as the registries' GetAttrs expose it."""
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        # NB: pods' spec.hostNetwork and nodes' spec.unschedulable read "false" when unset.
        return "false" if path in ("spec.hostNetwork", "spec.unschedulable") else ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, dict):
        # NB: core events' "source" field selector is source.component.
        return str(node.get("component", ""))
    return str(node)


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all((field_value(obj, r.field) == r.value) == r.equal for r in requirements)
