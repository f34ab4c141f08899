"""``copy_json``: the deep copy every model parse makes of its source (hot on webhook and CNI)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from common.model import DanmNet, copy_json
from common.model._base import copy_json_object


def test_copy_is_equal_and_shares_no_container() -> None:
    original = {"a": [1, {"b": [True, None, 1.5, "x"]}], "c": {"d": {}}}
    copied = copy_json(original)
    assert copied == original
    copied["a"][1]["b"].append("new")
    copied["c"]["d"]["e"] = 1
    assert original == {"a": [1, {"b": [True, None, 1.5, "x"]}], "c": {"d": {}}}


def test_values_that_are_not_json_are_deep_copied_too() -> None:
    shared = [1, 2]
    original = {"t": (shared,), "n": Decimal("1.5")}
    copied = copy_json(original)
    assert copied == original
    copied["t"][0].append(3)
    assert shared == [1, 2]


def test_copy_json_object_is_a_dict_copy_of_any_mapping() -> None:
    class Frozen(dict[str, object]):
        pass

    copied = copy_json_object(Frozen(k=[1]))
    assert type(copied) is dict
    assert copied == {"k": [1]}


def test_a_parsed_model_does_not_follow_later_changes_of_its_input() -> None:
    body: dict[str, Any] = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "n", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"NetworkID": "n", "Options": {"cidr": "10.0.0.0/24", "x-unknown": [1]}},
    }
    snapshot = json.loads(json.dumps(body))
    model = DanmNet.from_dict(body)
    body["metadata"]["labels"]["a"] = "changed"
    body["spec"]["Options"]["x-unknown"].append(2)
    assert model.to_dict() == snapshot
