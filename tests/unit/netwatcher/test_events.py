"""Problems become Warning Events once each, in the object's namespace (default if none)."""

from __future__ import annotations

from typing import Any

from common.io.kube import JsonObject, KubeUnavailable
from common.model.resources import EVENTS, Resource
from netwatcher.desired import NetworkProblem, NetworkRef
from netwatcher.events import MAX_MESSAGE_LENGTH, ProblemReporter, build_event

DANMNET = NetworkRef("2024-01-01T00:00:00Z", "DanmNet", "team-a", "blue", "uid-1", "42")
CLUSTER = NetworkRef("2024-01-01T00:00:00Z", "ClusterNetwork", "", "wide", "uid-2")
NOW_NS = 1_700_000_000_123_456_789


class RecordingApi:
    def __init__(self) -> None:
        self.created: list[tuple[Resource, str | None, JsonObject]] = []
        self.fail_next = False

    def create(self, resource: Resource, namespace: str | None, body: JsonObject) -> JsonObject:
        if self.fail_next:
            self.fail_next = False
            raise KubeUnavailable("connection refused")
        self.created.append((resource, namespace, body))
        return body

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"netwatcher must not call {name} on the API")


def test_event_shape_follows_the_client_go_recorder():
    event = build_event(NetworkProblem(DANMNET, "R", "msg"), node_name="node-1", now_ns=NOW_NS)
    assert event == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"blue.{NOW_NS:x}", "namespace": "team-a"},
        "involvedObject": {
            "apiVersion": "danm.k8s.io/v1",
            "kind": "DanmNet",
            "name": "blue",
            "namespace": "team-a",
            "uid": "uid-1",
            "resourceVersion": "42",
        },
        "reason": "R",
        "message": "msg",
        "type": "Warning",
        "count": 1,
        "firstTimestamp": "2023-11-14T22:13:20Z",
        "lastTimestamp": "2023-11-14T22:13:20Z",
        "source": {"component": "netwatcher", "host": "node-1"},
        "reportingComponent": "danm.k8s.io/netwatcher",
        "reportingInstance": "node-1",
    }


def test_cluster_scoped_networks_get_events_in_default_and_long_messages_are_cut():
    event = build_event(NetworkProblem(CLUSTER, "R", "x" * 5000), node_name="n", now_ns=NOW_NS)
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert len(event["message"]) == MAX_MESSAGE_LENGTH
    assert event["message"].endswith("...")


def test_each_problem_is_reported_once_until_it_goes_away_and_comes_back():
    api = RecordingApi()
    reporter = ProblemReporter(api, node_name="n", clock_ns=lambda: NOW_NS)
    first = NetworkProblem(DANMNET, "A", "a")
    second = NetworkProblem(CLUSTER, "B", "b")
    assert reporter.report([first]) == 1
    assert reporter.report([first, second]) == 1
    assert reporter.report([first, second]) == 0
    assert reporter.report([second]) == 0
    assert reporter.report([first, second]) == 1
    assert [(r, ns, body["reason"]) for r, ns, body in api.created] == [
        (EVENTS, "team-a", "A"),
        (EVENTS, "default", "B"),
        (EVENTS, "team-a", "A"),
    ]


def test_an_event_that_cannot_be_written_is_tried_again_next_pass():
    api = RecordingApi()
    api.fail_next = True
    reporter = ProblemReporter(api, node_name="n")
    problem = NetworkProblem(DANMNET, "A", "a")
    reporter.report([problem])
    assert api.created == []
    reporter.report([problem])
    assert len(api.created) == 1


def test_without_an_api_problems_are_only_logged():
    assert ProblemReporter(None, node_name="n").report([NetworkProblem(DANMNET, "A", "a")]) == 1
