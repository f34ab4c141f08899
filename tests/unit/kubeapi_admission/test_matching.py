"""Which webhooks the admission chain calls: rules, scope, subresources and selectors.

These run the chain's selection against configurations whose webhooks point nowhere: a webhook
that is selected fails to be called (failurePolicy Fail) and so shows up as an error, one that
is not selected leaves the request admitted. The pure matchers are table-tested directly too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.kubeapi.admission import (
    AdmissionAttributes,
    AdmissionChain,
    AdmissionDenied,
    rule_matches,
    selector_matches,
)

POD = AdmissionAttributes(
    operation="CREATE",
    group="",
    version="v1",
    resource="pods",
    subresource="",
    kind="Pod",
    namespace="default",
    name="web",
    obj={"metadata": {"name": "web", "labels": {"app": "web"}}},
    old_obj=None,
    dry_run=False,
    user="alice",
    groups=["system:authenticated"],
)
POD_STATUS = dataclasses.replace(POD, operation="UPDATE", subresource="status", old_obj=POD.obj)
NAMESPACE = dataclasses.replace(
    POD, resource="namespaces", kind="Namespace", namespace=None, name="team-a"
)
NODE = dataclasses.replace(POD, resource="nodes", kind="Node", namespace=None, name="n1")
DANMNET = dataclasses.replace(
    POD, group="danm.k8s.io", version="v1", resource="danmnets", kind="DanmNet"
)


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "operations": ["CREATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
    }
    base.update(overrides)
    return base


RULE_CASES: list[tuple[str, dict[str, Any], AdmissionAttributes, bool]] = [
    ("exact", rule(), POD, True),
    ("other operation", rule(operations=["UPDATE"]), POD, False),
    ("operation wildcard", rule(operations=["*"]), POD, True),
    ("several operations", rule(operations=["DELETE", "CREATE"]), POD, True),
    ("no operations", rule(operations=[]), POD, False),
    ("other group", rule(apiGroups=["apps"]), POD, False),
    ("group wildcard", rule(apiGroups=["*"], resources=["danmnets"]), DANMNET, True),
    ("custom group", rule(apiGroups=["danm.k8s.io"], resources=["danmnets"]), DANMNET, True),
    ("other version", rule(apiVersions=["v2"]), POD, False),
    ("version wildcard", rule(apiVersions=["*"]), POD, True),
    ("other resource", rule(resources=["services"]), POD, False),
    ("resource wildcard", rule(resources=["*"]), POD, True),
    (
        "bare wildcard skips subresources",
        rule(operations=["*"], resources=["*"]),
        POD_STATUS,
        False,
    ),
    ("plain resource skips subresource", rule(operations=["*"]), POD_STATUS, False),
    ("*/* includes subresources", rule(operations=["*"], resources=["*/*"]), POD_STATUS, True),
    ("pods/status", rule(operations=["UPDATE"], resources=["pods/status"]), POD_STATUS, True),
    ("pods/* ", rule(operations=["UPDATE"], resources=["pods/*"]), POD_STATUS, True),
    ("*/status", rule(operations=["UPDATE"], resources=["*/status"]), POD_STATUS, True),
    ("pods/status not pods", rule(resources=["pods/status"]), POD, False),
    ("pods/log not status", rule(operations=["*"], resources=["pods/log"]), POD_STATUS, False),
    ("scope * namespaced", rule(scope="*"), POD, True),
    ("scope Namespaced", rule(scope="Namespaced"), POD, True),
    ("scope Cluster vs namespaced", rule(scope="Cluster"), POD, False),
    ("scope Cluster node", rule(resources=["nodes"], scope="Cluster"), NODE, True),
    ("scope Namespaced node", rule(resources=["nodes"], scope="Namespaced"), NODE, False),
    (
        "namespace object is Cluster",
        rule(resources=["namespaces"], scope="Cluster"),
        dataclasses.replace(NAMESPACE, namespace="team-a"),
        True,
    ),
    (
        "namespace object is not Namespaced",
        rule(resources=["namespaces"], scope="Namespaced"),
        dataclasses.replace(NAMESPACE, namespace="team-a"),
        False,
    ),
    ("unknown scope", rule(scope="Galaxy"), POD, False),
]


@pytest.mark.parametrize(
    ("the_rule", "attrs", "expected"),
    [pytest.param(r, a, e, id=n) for n, r, a, e in RULE_CASES],
)
def test_rule_matches(the_rule: dict[str, Any], attrs: AdmissionAttributes, expected: bool) -> None:
    assert rule_matches(the_rule, attrs) is expected


SELECTOR_CASES: list[tuple[str, dict[str, Any] | None, dict[str, str], bool]] = [
    ("absent", None, {}, True),
    ("empty", {}, {"a": "1"}, True),
    ("matchLabels hit", {"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ("matchLabels miss", {"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ("matchLabels absent", {"matchLabels": {"a": "1"}}, {}, False),
    ("In hit", {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
     {"a": "2"}, True),
    ("In absent", {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},
     {}, False),
    ("NotIn absent", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
     {}, True),
    ("NotIn hit", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
     {"a": "1"}, False),
    ("Exists", {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ("DoesNotExist", {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
     {"a": "x"}, False),
    (
        "all requirements ANDed",
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
        {"a": "1"},
        False,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [pytest.param(s, la, e, id=n) for n, s, la, e in SELECTOR_CASES],
)
def test_selector_matches(
    selector: dict[str, Any] | None, labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected


@pytest.mark.parametrize(
    "selector",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Near"}]},
        {"matchExpressions": [{"operator": "Exists"}]},
    ],
)
def test_invalid_selectors_are_errors(selector: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        selector_matches(selector, {"a": "1"})


# --- the chain's selection ---------------------------------------------------------------------

UNREACHABLE = "https://127.0.0.1:1/unreachable"  # NB: port 1 is never a webhook here.


def validating(*hooks: dict[str, Any], name: str = "cfg") -> dict[str, Any]:
    return {"metadata": {"name": name}, "webhooks": list(hooks)}


def hook(name: str = "hook.test.io", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": UNREACHABLE},
        "rules": [rule(operations=["*"], resources=["*/*"], apiGroups=["*"], apiVersions=["*"])],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    }
    base.update(overrides)
    return base


def chain_for(
    *configs: dict[str, Any], namespaces: dict[str, dict[str, str]] | None = None
) -> AdmissionChain:
    def list_configs(plural: str) -> list[dict[str, Any]]:
        return list(configs) if plural == "validatingwebhookconfigurations" else []

    get_labels = None if namespaces is None else namespaces.get
    return AdmissionChain(list_configs, get_namespace_labels=get_labels)


async def was_called(chain: AdmissionChain, attrs: AdmissionAttributes) -> bool:
    """True when the chain selected (and so tried and failed to call) the webhook."""
    outcome: AdmissionDenied | None = None
    try:
        await chain.validate(attrs)
    except AdmissionDenied as denied:
        outcome = denied
    finally:
        await chain.close()
    if outcome is None:
        return False
    assert outcome.code == 500, outcome.message
    assert "failed calling webhook" in outcome.message
    return True


TEAM_NAMESPACES = {"default": {"env": "prod"}, "team-a": {"env": "dev"}}

SELECTION_CASES: list[tuple[str, dict[str, Any], AdmissionAttributes, bool]] = [
    ("everything", hook(), POD, True),
    ("rule mismatch", hook(rules=[rule(resources=["services"])]), POD, False),
    ("no rules", hook(rules=[]), POD, False),
    ("second rule matches", hook(rules=[rule(resources=["services"]), rule()]), POD, True),
    ("namespace selector hit", hook(namespaceSelector={"matchLabels": {"env": "prod"}}), POD, True),
    (
        "namespace selector miss",
        hook(namespaceSelector={"matchLabels": {"env": "dev"}}),
        POD,
        False,
    ),
    (
        "namespace selector ignores cluster-scoped objects",
        hook(namespaceSelector={"matchLabels": {"env": "dev"}}),
        NODE,
        True,
    ),
    (
        "namespace selector on a namespace uses the new object's labels",
        hook(namespaceSelector={"matchLabels": {"env": "qa"}}),
        dataclasses.replace(NAMESPACE, obj={"metadata": {"name": "x", "labels": {"env": "qa"}}}),
        True,
    ),
    ("object selector on obj", hook(objectSelector={"matchLabels": {"app": "web"}}), POD, True),
    ("object selector miss", hook(objectSelector={"matchLabels": {"app": "db"}}), POD, False),
    (
        "object selector on old_obj",
        hook(objectSelector={"matchLabels": {"app": "old"}}),
        dataclasses.replace(
            POD,
            operation="UPDATE",
            old_obj={"metadata": {"labels": {"app": "old"}}},
            obj={"metadata": {}},
        ),
        True,
    ),
    (
        "object selector on DELETE uses old_obj",
        hook(objectSelector={"matchLabels": {"app": "web"}}),
        dataclasses.replace(POD, operation="DELETE", old_obj=POD.obj, obj=None),
        True,
    ),
    (
        "webhook configurations are exempt",
        hook(),
        dataclasses.replace(
            NODE,
            group="admissionregistration.k8s.io",
            resource="validatingwebhookconfigurations",
            kind="ValidatingWebhookConfiguration",
        ),
        False,
    ),
    ("matchConditions under Ignore are skipped", hook(
        matchConditions=[{"name": "c", "expression": "true"}], failurePolicy="Ignore"
    ), POD, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("the_hook", "attrs", "expected"),
    [pytest.param(h, a, e, id=n) for n, h, a, e in SELECTION_CASES],
)
async def test_selection(the_hook: dict[str, Any], attrs: AdmissionAttributes, expected: bool):
    chain = chain_for(validating(the_hook), namespaces=TEAM_NAMESPACES)
    assert await was_called(chain, attrs) is expected


async def test_without_namespace_lookup_only_the_name_label_exists() -> None:
    by_name = hook(namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": "default"}})
    assert await was_called(chain_for(validating(by_name)), POD) is True
    by_env = hook(namespaceSelector={"matchLabels": {"env": "prod"}})
    assert await was_called(chain_for(validating(by_env)), POD) is False


async def test_missing_namespace_is_404_only_for_matching_webhooks() -> None:
    selector = {"matchLabels": {"env": "prod"}}
    chain = chain_for(validating(hook(namespaceSelector=selector)), namespaces={})
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(POD)
    assert (caught.value.code, caught.value.reason) == (404, "NotFound")
    assert caught.value.message == 'namespaces "default" not found'

    unrelated = hook(namespaceSelector=selector, rules=[rule(resources=["services"])])
    assert await was_called(chain_for(validating(unrelated), namespaces={}), POD) is False


async def test_invalid_selector_is_an_internal_error() -> None:
    bad = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    chain = chain_for(validating(hook(objectSelector=bad)))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(POD)
    assert (caught.value.code, caught.value.reason) == (500, "InternalError")
    assert "not a valid label selector operator" in caught.value.message


async def test_match_conditions_under_fail_are_forbidden() -> None:
    conditions = [{"name": "c", "expression": "true"}]
    chain = chain_for(validating(hook(matchConditions=conditions)))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(POD)
    assert (caught.value.code, caught.value.reason) == (403, "Forbidden")
    assert caught.value.message.startswith('pods "web" is forbidden: ')
    assert "matchConditions" in caught.value.message
