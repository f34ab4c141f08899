from __future__ import annotations

import pytest

from tests.kubeapi.selectors import (
    Requirement,
    SelectorError,
    field_value,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (db, web)", True),
        ("app notin (web)", False),
        ("missing notin (web)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier in (front),!missing", True),
        ("app=web,tier=back", False),
        ("n>4", True),
        ("n<5", False),
        ("app>1", False),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is matches


def test_label_selector_parse_shape() -> None:
    assert parse_label_selector("a in (x,y), !b") == [
        Requirement("a", "in", ("x", "y")),
        Requirement("b", "!"),
    ]


@pytest.mark.parametrize("selector", ["a=b=c", "a in ()", "=x", "a>b", "a=b c"])
def test_label_selector_errors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selector_known_and_unknown() -> None:
    supported = ("metadata.name", "metadata.namespace", "spec.nodeName")
    parsed = parse_field_selector("spec.nodeName=n1,metadata.name!=x", supported, custom=False)
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}}
    assert fields_match(parsed, pod)
    assert not fields_match(parsed, {"metadata": {"name": "x"}, "spec": {"nodeName": "n1"}})
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.foo$"):
        parse_field_selector("spec.foo=1", supported, custom=False)
    with pytest.raises(SelectorError, match=r'^"spec\.foo" is not a known field selector'):
        parse_field_selector("spec.foo=1", supported, custom=True)


@pytest.mark.parametrize(
    ("obj", "path", "value"),
    [
        ({"spec": {"nodeName": "n"}}, "spec.nodeName", "n"),
        ({"spec": {}}, "spec.nodeName", ""),
        ({"spec": {}}, "spec.hostNetwork", "false"),
        ({"spec": {"unschedulable": True}}, "spec.unschedulable", "true"),
        ({"source": {"component": "kubelet"}}, "source", "kubelet"),
    ],
)
def test_field_value(obj: dict[str, object], path: str, value: str) -> None:
    assert field_value(obj, path) == value
