"""The three patch formats of kube-apiserver as pure functions over JSON values.

* RFC 7386 JSON merge patch (``application/merge-patch+json``),
* RFC 6902 JSON patch (``application/json-patch+json``) including ``test``,
* strategic merge patch (``application/strategic-merge-patch+json``) for built-in kinds,
  with the list merge keys of the core types our components use.

Errors are our own: :class:`PatchFormatError` becomes 400 BadRequest and
:class:`PatchApplyError` becomes the 422 a failing ``test`` op gets from the real server.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.jsonpatch import JsonPatchError, apply_patch


class PatchFormatError(ValueError):
    """The patch document itself is malformed."""


class PatchApplyError(ValueError):
    """The patch is well formed but cannot be applied (failed ``test``, missing path...)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902, applied to a copy; the operations run in order and all or nothing.

    The RFC itself lives in :mod:`tests.kubeapi.jsonpatch` (shared with the admission chain,
    which applies webhook patches); here we only map its errors to the apiserver's status codes.
    """
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise PatchFormatError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    try:
        return apply_patch(target, operations)
    except JsonPatchError as e:
        raise PatchApplyError(str(e)) from e


# NB: patchMergeKey tags of the k8s.io/api types we serve, keyed by field name; "ports" is
# keyed by containerPort inside containers and by port in a Service spec.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "addresses": "type",
    "podIPs": "ip",
    "ownerReferences": "uid",
    "webhooks": "name",
}
_PRIMITIVE_MERGE_LISTS = {"finalizers"}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


def merge_key_for(path: tuple[str, ...]) -> str | None:
    """The list merge key at a field path (list indices omitted), None for atomic lists."""
    if not path:
        return None
    if path[-1] == "ports":
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "containerPort"
        return "port" if path == ("spec", "ports") else None
    if path[-1] == "addresses" and path[:1] != ("status",):
        return None  # NB: only NodeStatus.addresses merges; Endpoints subsets are atomic.
    return _MERGE_KEYS.get(path[-1])


def strategic_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PatchFormatError("strategic merge patch must be a JSON object")
    result = _merge_map(target, patch, ())
    return result if result is not None else {}


def _merge_map(
    original: dict[str, Any] | None, patch: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    plain = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return copy.deepcopy(plain)
    if directive is not None:
        raise PatchFormatError(f"Unknown patch type: {directive}")
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain or k in plain}
    for key, values in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in values]
    for key, value in plain.items():
        child = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        else:
            result[key] = value
    return result


def _merge_list(original: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    current = copy.deepcopy(original) if isinstance(original, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = merge_key_for(path)
    if path[-1] in _PRIMITIVE_MERGE_LISTS:
        return current + [v for v in patch if v not in current]
    if key is None:
        return copy.deepcopy(patch)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchFormatError(f"map: {item} does not contain declared merge key: {key}")
        position = next(
            (i for i, e in enumerate(current) if isinstance(e, dict) and e.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del current[position]
            continue
        if position is None:
            merged = _merge_map({}, item, path)
            if merged is not None:
                current.append(merged)
        else:
            merged = _merge_map(current[position], item, path)
            if merged is None:
                del current[position]
            else:
                current[position] = merged
    return current
