"""The JSON Patch builder: add where absent, replace where present, remove, RFC 6901 escaping."""

from __future__ import annotations

import pytest

from webhook.patch import apply_patch, build_patch, pointer

CASES = [
    ("equal", {"a": 1}, {"a": 1}, []),
    ("add-absent-key", {"a": 1}, {"a": 1, "b": 2}, [{"op": "add", "path": "/b", "value": 2}]),
    ("replace-present-key", {"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
    ("remove-key", {"a": 1, "b": 2}, {"a": 1}, [{"op": "remove", "path": "/b"}]),
    (
        "nested-add-keeps-siblings",
        {"spec": {"Options": {"cidr": "10.0.0.0/30"}}},
        {"spec": {"Options": {"cidr": "10.0.0.0/30", "alloc": "kA=="}}},
        [{"op": "add", "path": "/spec/Options/alloc", "value": "kA=="}],
    ),
    (
        "absent-parent-added-whole",
        {"spec": {}},
        {"spec": {"Options": {"alloc": "kA=="}}},
        [{"op": "add", "path": "/spec/Options", "value": {"alloc": "kA=="}}],
    ),
    (
        "null-replaced",
        {"spec": {"Options": None}},
        {"spec": {"Options": {"vlan": 5}}},
        [{"op": "replace", "path": "/spec/Options", "value": {"vlan": 5}}],
    ),
    (
        "escaped-keys",
        {"routes": {"10.0.0.0/8": "a", "x~y": 1}},
        {"routes": {"10.0.0.0/8": "b", "x~y": 2}},
        [
            {"op": "replace", "path": "/routes/10.0.0.0~18", "value": "b"},
            {"op": "replace", "path": "/routes/x~0y", "value": 2},
        ],
    ),
    (
        "same-length-list-per-element",
        {"hostDevices": [{"name": "a"}, {"name": "b"}]},
        {"hostDevices": [{"name": "a", "alloc": "x"}, {"name": "b"}]},
        [{"op": "add", "path": "/hostDevices/0/alloc", "value": "x"}],
    ),
    (
        "other-length-list-whole",
        {"l": [1]},
        {"l": [1, 2]},
        [{"op": "replace", "path": "/l", "value": [1, 2]}],
    ),
    ("bool-is-not-int", {"a": True}, {"a": 1}, [{"op": "replace", "path": "/a", "value": 1}]),
]


@pytest.mark.parametrize(
    ("original", "desired", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_build_patch(original, desired, expected):
    patch = build_patch(original, desired)
    assert patch == expected
    assert apply_patch(original, patch) == desired


def test_pointer_escapes_segments():
    assert pointer("spec", "Options", "routes", "10.0.0.0/8") == "/spec/Options/routes/10.0.0.0~18"
    assert pointer("a~b") == "/a~0b"


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "move", "path": "/a", "from": "/b"}],
    ],
)
def test_apply_patch_is_strict(patch):
    with pytest.raises(ValueError):  # noqa: PT011
        apply_patch({"a": 1}, patch)
