"""Read the guest's junit XML into the few numbers and failure texts the host test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field


class JunitError(Exception):
    """The results file is missing or not junit XML."""


@dataclass(frozen=True)
class Problem:
    """One test that did not pass: ``failure``, ``error`` or ``skipped``, with its message."""

    test_id: str
    outcome: str
    message: str


@dataclass(frozen=True)
class JunitSummary:
    total: int
    passed: int
    problems: tuple[Problem, ...] = field(default=())

    def describe(self) -> str:
        lines = [f"{self.total} collected, {self.passed} passed, {len(self.problems)} not passed"]
        lines.extend(f"  {p.outcome.upper()} {p.test_id}: {p.message}" for p in self.problems)
        return "\n".join(lines)


def summarise_junit(xml_text: str) -> JunitSummary:
    """Count test cases and collect every failure, error and skip from pytest's junit XML."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as error:
        raise JunitError(f"not junit XML: {error}") from error
    total = 0
    problems: list[Problem] = []
    for case in root.iter("testcase"):
        total += 1
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        for outcome in ("failure", "error", "skipped"):
            found = case.find(outcome)
            if found is not None:
                message = (found.get("message") or found.text or "").strip().splitlines()
                problems.append(Problem(test_id, outcome, message[0] if message else ""))
                break
    failed_cases = {p.test_id for p in problems}
    return JunitSummary(total=total, passed=total - len(failed_cases), problems=tuple(problems))
