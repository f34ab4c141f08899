"""RFC 6902 JSON Patch, applied to plain JSON values.

The API stand-in needs JSON Patch twice: mutating admission webhooks answer with one
(``patchType: JSONPatch``), and clients send one with ``PATCH`` and
``Content-Type: application/json-patch+json``. Both must behave like the real apiserver,
which applies patches atomically: either every operation succeeds or the document is left
as it was. :func:`apply_patch` therefore works on a deep copy and never touches its input.

Pointers follow RFC 6901: ``""`` is the whole document, ``~1`` is ``/`` and ``~0`` is
``~``, array indexes are decimal without leading zeros, and ``-`` (only for ``add``, and
as the target of ``move``/``copy``) means "after the last element".

Every failure is a :class:`JsonPatchError` naming the operation (index, op and path) and
what was wrong, so a caller can put the message straight into a ``Status``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

__all__ = [
    "JsonPatchError",
    "apply_patch",
    "escape_token",
    "json_equal",
    "parse_patch",
    "parse_pointer",
]

_OPS_WITH_VALUE = frozenset({"add", "replace", "test"})
_OPS_WITH_FROM = frozenset({"move", "copy"})
_KNOWN_OPS = _OPS_WITH_VALUE | _OPS_WITH_FROM | {"remove"}


class JsonPatchError(ValueError):
    """A patch that is malformed or cannot be applied to the given document."""


def escape_token(token: str) -> str:
    """One reference token, escaped for use in a pointer (``a/b`` → ``a~1b``)."""
    return token.replace("~", "~0").replace("/", "~1")


def parse_pointer(pointer: str) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise JsonPatchError(f"a JSON pointer must be a string, got {_describe(pointer)}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(f'JSON pointer "{pointer}" must be empty or start with "/"')
    tokens = []
    for raw in pointer[1:].split("/"):
        # NB: "~" may only be followed by 0 or 1; anything else is not a pointer at all.
        rest = raw.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise JsonPatchError(
                f'JSON pointer "{pointer}" has an invalid escape in "{raw}" (only ~0 and ~1)'
            )
        # NB: ~1 first, then ~0, so "~01" becomes "~1" and not "/" (RFC 6901 §4).
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def json_equal(left: Any, right: Any) -> bool:
    """JSON value equality as RFC 6902 ``test`` defines it.

    Python's ``==`` would say ``True == 1`` and ``1 == 1.0``; JSON keeps booleans apart from
    numbers but compares numbers by value.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if type(left) is not type(right):
        return False
    return bool(left == right)


def parse_patch(raw: bytes | str) -> list[dict[str, Any]]:
    """Decode a JSON Patch document and check its shape (not yet its applicability)."""
    try:
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise JsonPatchError(f"the patch is not valid JSON: {e}") from e
    if not isinstance(decoded, list):
        raise JsonPatchError(f"a JSON patch must be a JSON array, got {_describe(decoded)}")
    for index, operation in enumerate(decoded):
        _check_operation(index, operation)
    return decoded


def apply_patch(document: Any, patch: Sequence[Any]) -> Any:
    """Apply ``patch`` (a list of operation objects) and return the patched copy."""
    if isinstance(patch, str | bytes) or not isinstance(patch, Sequence):
        raise JsonPatchError(f"a JSON patch must be a list of operations, got {_describe(patch)}")
    result = copy.deepcopy(document)
    for index, operation in enumerate(patch):
        _check_operation(index, operation)
        try:
            result = _apply_one(result, operation)
        except JsonPatchError as e:
            label = f"{operation['op']} {operation['path']}"
            raise JsonPatchError(f"operation {index} ({label}): {e}") from None
    return result


def _check_operation(index: int, operation: Any) -> None:
    if not isinstance(operation, dict):
        raise JsonPatchError(f"operation {index} must be a JSON object, got {_describe(operation)}")
    op = operation.get("op")
    if op not in _KNOWN_OPS:
        known = ", ".join(sorted(_KNOWN_OPS))
        raise JsonPatchError(f"operation {index} has unknown op {op!r} (expected one of {known})")
    if "path" not in operation:
        raise JsonPatchError(f'operation {index} ({op}) is missing "path"')
    _parse_pointer_in(index, op, "path", operation["path"])
    if op in _OPS_WITH_VALUE and "value" not in operation:
        raise JsonPatchError(f'operation {index} ({op} {operation["path"]}) is missing "value"')
    if op in _OPS_WITH_FROM:
        if "from" not in operation:
            raise JsonPatchError(f'operation {index} ({op} {operation["path"]}) is missing "from"')
        _parse_pointer_in(index, op, "from", operation["from"])


def _parse_pointer_in(index: int, op: str, member: str, pointer: Any) -> list[str]:
    try:
        return parse_pointer(pointer)
    except JsonPatchError as e:
        raise JsonPatchError(f'operation {index} ({op}) has a bad "{member}": {e}') from None


def _apply_one(document: Any, operation: dict[str, Any]) -> Any:
    op = operation["op"]
    path = parse_pointer(operation["path"])
    if op == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    if op == "remove":
        _remove(document, path)
        return document
    if op == "replace":
        if not path:
            return copy.deepcopy(operation["value"])
        parent, token = _parent(document, path)
        _require_member(parent, token, path)
        parent[_index_or_key(parent, token, path, allow_end=False)] = copy.deepcopy(
            operation["value"]
        )
        return document
    if op == "test":
        actual = _get(document, path)
        if not json_equal(actual, operation["value"]):
            raise JsonPatchError(
                f"test failed: value is {json.dumps(actual)}, "
                f"expected {json.dumps(operation['value'])}"
            )
        return document
    source = parse_pointer(operation["from"])
    if op == "move":
        if path[: len(source)] == source and len(path) > len(source):
            raise JsonPatchError(f'cannot move "{operation["from"]}" into one of its own children')
        if path == source:
            _get(document, source)
            return document
        value = _get(document, source)
        _remove(document, source)
        return _add(document, path, value)
    # NB: copy must not alias; a later op on either location would otherwise change both.
    return _add(document, path, copy.deepcopy(_get(document, source)))


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent, token = _parent(document, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index_or_key(parent, token, path, allow_end=True), value)
    else:
        raise JsonPatchError(f"{_where(path[:-1])} is {_describe(parent)}, not an object or array")
    return document


def _remove(document: Any, path: list[str]) -> None:
    if not path:
        raise JsonPatchError("cannot remove the whole document")
    parent, token = _parent(document, path)
    _require_member(parent, token, path)
    del parent[_index_or_key(parent, token, path, allow_end=False)]


def _get(document: Any, path: list[str]) -> Any:
    current = document
    for depth, token in enumerate(path):
        here = path[: depth + 1]
        if isinstance(current, dict):
            if token not in current:
                raise JsonPatchError(f"{_where(here)} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_index_or_key(current, token, here, allow_end=False)]
        else:
            raise JsonPatchError(f"{_where(path[:depth])} is {_describe(current)}, not a container")
    return current


def _parent(document: Any, path: list[str]) -> tuple[Any, str]:
    return _get(document, path[:-1]), path[-1]


def _require_member(parent: Any, token: str, path: list[str]) -> None:
    if isinstance(parent, dict):
        if token not in parent:
            raise JsonPatchError(f"{_where(path)} does not exist")
    elif not isinstance(parent, list):
        raise JsonPatchError(f"{_where(path[:-1])} is {_describe(parent)}, not an object or array")


def _index_or_key(container: Any, token: str, path: list[str], *, allow_end: bool) -> Any:
    if isinstance(container, dict):
        return token
    size = len(container)
    if token == "-":
        if allow_end:
            return size
        raise JsonPatchError(f'{_where(path)}: "-" (past the end) only works for adding')
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise JsonPatchError(f'{_where(path)}: "{token}" is not an array index')
    index = int(token)
    limit = size if allow_end else size - 1
    if index > limit:
        raise JsonPatchError(f"{_where(path)}: index {index} is out of bounds (length {size})")
    return index


def _where(path: list[str]) -> str:
    if not path:
        return "the document root"
    return '"' + "".join("/" + escape_token(t) for t in path) + '"'


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
