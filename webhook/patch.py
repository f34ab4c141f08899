"""RFC 6902 JSON Patch between the object the API server sent and the one we want stored.

The original built its patches by hand: every op a ``replace`` (even for keys the object did not
have, which only worked because the API server applied patches leniently) and the TenantConfig
patch by string concatenation without JSON escaping (danm-behaviour §13.20, §13.22). Here the
webhook mutates a copy of the object as plain data and this module derives the patch from the
difference, so the ops are right by construction:

* a key the original lacks is ``add``-ed, one it has with another value is ``replace``-d, one that
  disappeared is ``remove``-d;
* objects are compared key by key, so a change deep inside ``spec.Options`` patches that key only;
* lists of equal length are compared element by element (a TenantConfig's ``hostDevices`` gets
  one ``add`` per initialised ``alloc``); lists of different length are replaced whole;
* path segments are escaped per RFC 6901 (``~`` -> ``~0``, ``/`` -> ``~1``), which matters for
  ``routes`` keys such as ``10.0.0.0/8`` and device-pool names such as ``nokia.k8s.io/sriov``.

Pure: data in, data out.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from common.model import copy_json

JsonPatch: TypeAlias = list[dict[str, Any]]


def escape_segment(segment: str | int) -> str:
    """One JSON Pointer reference token (RFC 6901 §3)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def pointer(*segments: str | int) -> str:
    """A JSON Pointer from unescaped segments, e.g. ``pointer("spec", "Options", "alloc")``."""
    return "".join("/" + escape_segment(segment) for segment in segments)


def _same(left: Any, right: Any) -> bool:
    # NB: JSON has no bool/int distinction problem here, but Python says True == 1; a patch that
    # silently kept `true` where we meant `1` would be wrong on the wire.
    return type(left) is type(right) and left == right


def build_patch(original: Any, desired: Any) -> JsonPatch:
    """The ops that turn ``original`` into ``desired`` (both decoded JSON); ``[]`` if equal."""
    ops: JsonPatch = []
    _diff(original, desired, "", ops)
    return ops


def _diff(original: Any, desired: Any, path: str, ops: JsonPatch) -> None:
    # NB: containers are always walked: `{"a": True} == {"a": 1}` holds in Python.
    if isinstance(original, dict) and isinstance(desired, dict):
        for key, value in original.items():
            child = f"{path}/{escape_segment(key)}"
            if key not in desired:
                ops.append({"op": "remove", "path": child})
            else:
                _diff(value, desired[key], child, ops)
        for key, value in desired.items():
            if key not in original:
                ops.append({"op": "add", "path": f"{path}/{escape_segment(key)}", "value": value})
        return
    if isinstance(original, list) and isinstance(desired, list) and len(original) == len(desired):
        for index, (left, right) in enumerate(zip(original, desired, strict=True)):
            _diff(left, right, f"{path}/{index}", ops)
        return
    if _same(original, desired):
        return
    ops.append({"op": "replace", "path": path, "value": desired})


def apply_patch(document: Any, patch: JsonPatch) -> Any:
    """Apply ``add``/``replace``/``remove`` ops to a copy of ``document`` (for tests and checks).

    Strict like the API server: ``replace``/``remove`` need the target to exist, ``add`` needs
    the parent. Raises ``ValueError`` otherwise.
    """

    result = copy_json(document)
    for op in patch:
        tokens = [_unescape(token) for token in op["path"].split("/")[1:]]
        if not tokens:
            if op["op"] != "remove":
                result = copy_json(op["value"])
                continue
            raise ValueError("cannot remove the whole document")
        parent = result
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, copy_json(op["value"]))
            elif kind == "replace":
                parent[index] = copy_json(op["value"])
            else:
                del parent[index]
            continue
        if not isinstance(parent, dict):
            raise ValueError(f"{op['path']}: parent is not an object or array")
        if kind in ("replace", "remove") and last not in parent:
            raise ValueError(f"{op['path']}: {kind} of a missing key")
        if kind == "remove":
            del parent[last]
        elif kind in ("add", "replace"):
            parent[last] = copy_json(op["value"])
        else:
            raise ValueError(f"unsupported op {kind!r}")
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")
