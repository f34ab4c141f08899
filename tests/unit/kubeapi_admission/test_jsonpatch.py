"""RFC 6902 behaviour of tests.kubeapi.jsonpatch: the appendix A examples and the edges."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.kubeapi.jsonpatch import (
    JsonPatchError,
    apply_patch,
    escape_token,
    json_equal,
    parse_patch,
    parse_pointer,
)

# (name, document, patch, expected result) — RFC 6902 appendix A, successful examples.
APPENDIX_A_OK: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "A.1 add an object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add an array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    (
        "A.3 remove an object member",
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
    ),
    (
        "A.4 remove an array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace a value",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move a value",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move an array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test a value (success)",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add a nested member object",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11 ignore unrecognized elements",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        "A.14 ~ escape ordering",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
    ),
    (
        "A.16 add an array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
]

# (name, document, patch, words the error must contain) — appendix A failures and more.
FAILURES: list[tuple[str, Any, list[Any], str]] = [
    (
        "A.9 test a value (error)",
        {"baz": "qux"},
        [{"op": "test", "path": "/baz", "value": "bar"}],
        "test failed",
    ),
    (
        "A.12 add to a nonexistent target",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        '"/baz" does not exist',
    ),
    (
        "A.15 comparing strings and numbers",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        "test failed",
    ),
    ("remove a missing member", {"a": 1}, [{"op": "remove", "path": "/b"}], '"/b" does not exist'),
    ("replace a missing member", {}, [{"op": "replace", "path": "/b", "value": 1}], "not exist"),
    ("array index past the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 0}], "bounds"),
    (
        "leading zero index",
        {"a": [1, 2]},
        [{"op": "remove", "path": "/a/01"}],
        "not an array index",
    ),
    ("negative index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/-1"}], "not an array index"),
    ("dash outside add", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "only works for adding"),
    ("unknown op", {}, [{"op": "frobnicate", "path": "/a"}], "unknown op"),
    ("missing value", {}, [{"op": "add", "path": "/a"}], 'missing "value"'),
    ("missing from", {}, [{"op": "copy", "path": "/a"}], 'missing "from"'),
    ("missing path", {}, [{"op": "remove"}], 'missing "path"'),
    ("pointer without slash", {}, [{"op": "add", "path": "a", "value": 1}], 'start with "/"'),
    ("bad escape", {}, [{"op": "add", "path": "/a~2", "value": 1}], "invalid escape"),
    ("operation not an object", {}, ["add"], "must be a JSON object"),
    (
        "move into own child",
        {"a": {"b": {}}},
        [{"op": "move", "from": "/a", "path": "/a/b/c"}],
        "own children",
    ),
    ("remove the root", {"a": 1}, [{"op": "remove", "path": ""}], "whole document"),
    ("descend into a scalar", {"a": 1}, [{"op": "add", "path": "/a/b", "value": 2}], "a number"),
    (
        "test true against 1",
        {"a": True},
        [{"op": "test", "path": "/a", "value": 1}],
        "test failed",
    ),
]


@pytest.mark.parametrize(
    ("document", "patch", "expected"),
    [pytest.param(d, p, e, id=n) for n, d, p, e in APPENDIX_A_OK],
)
def test_appendix_a_examples(document: Any, patch: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(document)
    assert apply_patch(document, patch) == expected
    assert document == before, "apply_patch must not modify its input"


def test_a13_invalid_json_patch_document_is_rejected() -> None:
    # NB: the RFC's A.13 has a duplicate "op" member; JSON decoders keep the last one, so the
    # closest decoded equivalent is an operation whose op is not a known one.
    with pytest.raises(JsonPatchError, match="not valid JSON"):
        parse_patch(b'[{"op": "add", "path": "/baz", "value": "qux", "op": }]')


@pytest.mark.parametrize(
    ("document", "patch", "words"),
    [pytest.param(d, p, w, id=n) for n, d, p, w in FAILURES],
)
def test_failures_raise_clear_errors(document: Any, patch: list[Any], words: str) -> None:
    before = copy.deepcopy(document)
    with pytest.raises(JsonPatchError, match=re.escape(words)):
        apply_patch(document, patch)
    assert document == before


def test_failed_patch_is_atomic_and_names_the_operation() -> None:
    document = {"a": 1}
    patch = [
        {"op": "add", "path": "/b", "value": 2},
        {"op": "remove", "path": "/missing"},
    ]
    with pytest.raises(JsonPatchError, match=r"operation 1 \(remove /missing\)"):
        apply_patch(document, patch)
    assert document == {"a": 1}


@pytest.mark.parametrize(
    ("document", "patch", "expected"),
    [
        pytest.param({"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1], id="add-root"),
        pytest.param({"a": 1}, [{"op": "replace", "path": "", "value": 2}], 2, id="replace-root"),
        pytest.param(
            {"a/b": 1, "m~n": 2},
            [
                {"op": "replace", "path": "/a~1b", "value": 10},
                {"op": "remove", "path": "/m~0n"},
            ],
            {"a/b": 10},
            id="escapes",
        ),
        pytest.param(
            {"a": [1, 2]},
            [{"op": "add", "path": "/a/2", "value": 3}],
            {"a": [1, 2, 3]},
            id="add-at-length",
        ),
        pytest.param(
            {"a": {"x": [1]}},
            [
                {"op": "copy", "from": "/a", "path": "/b"},
                {"op": "add", "path": "/b/x/-", "value": 2},
            ],
            {"a": {"x": [1]}, "b": {"x": [1, 2]}},
            id="copy-does-not-alias",
        ),
        pytest.param(
            {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}, id="move-to-itself"
        ),
        pytest.param(
            {"a": {"x": 1.0, "y": [1, {"z": None}]}},
            [{"op": "test", "path": "/a", "value": {"y": [1, {"z": None}], "x": 1}}],
            {"a": {"x": 1.0, "y": [1, {"z": None}]}},
            id="test-deep-equality",
        ),
        pytest.param(
            {"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}, id="empty-key"
        ),
        pytest.param({"a": 1}, [], {"a": 1}, id="empty-patch"),
    ],
)
def test_edge_cases(document: Any, patch: list[dict[str, Any]], expected: Any) -> None:
    assert apply_patch(document, patch) == expected


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("", []),
        ("/", [""]),
        ("/a/b", ["a", "b"]),
        ("/a~1b", ["a/b"]),
        ("/m~0n", ["m~n"]),
        ("/~01", ["~1"]),
        ("/0/-", ["0", "-"]),
    ],
)
def test_parse_pointer(pointer: str, tokens: list[str]) -> None:
    assert parse_pointer(pointer) == tokens
    if tokens:
        assert "".join("/" + escape_token(t) for t in tokens) == pointer


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{}", "must be a JSON array"),
        (b"[1]", "must be a JSON object"),
        (b'[{"op": "test", "path": "/a"}]', 'missing "value"'),
        (b"\xff", "not valid JSON"),
    ],
)
def test_parse_patch_rejects_malformed_documents(raw: bytes, words: str) -> None:
    with pytest.raises(JsonPatchError, match=re.escape(words)):
        parse_patch(raw)


def test_parse_patch_accepts_a_valid_document() -> None:
    assert parse_patch('[{"op": "remove", "path": "/a"}]') == [{"op": "remove", "path": "/a"}]


def test_apply_patch_rejects_a_non_list() -> None:
    with pytest.raises(JsonPatchError, match="list of operations"):
        apply_patch({}, {"op": "add"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (None, None, True),
        ("1", 1, False),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ([1, 2], [2, 1], False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
    ],
)
def test_json_equal(left: Any, right: Any, equal: bool) -> None:
    assert json_equal(left, right) is equal
