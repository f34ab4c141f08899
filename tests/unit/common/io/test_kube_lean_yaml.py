"""``kube_lean.simple_yaml`` reads kubeconfig YAML exactly as PyYAML's safe loader, or declines."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.io.kube_lean import simple_yaml

REPO = Path(__file__).resolve().parents[4]

KUBECTL_STYLE = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: false
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    namespace: kube-system
    user: danm
  name: danm@kubernetes
current-context: danm@kubernetes
kind: Config
preferences: {}
users:
- name: danm
  user:
    token: 'abc''def'
    username: "admin"
    extensions: []
"""

ACCEPTED = [
    pytest.param(KUBECTL_STYLE, id="kubectl-style"),
    pytest.param("a:\n  b:\n    c: x\n  d: y\ne: z\n", id="nested"),
    pytest.param("a:\n  - x\n  - y\nb:\n- z\n", id="indented-and-aligned-sequences"),
    pytest.param("a:\n-\n- b\n-   c: d\n    e: f\n", id="empty-item-and-wide-item"),
    pytest.param("a: yes\nb: Off\nc: null\nd:\ne: TRUE\n", id="booleans-and-nulls"),
    pytest.param("# head\na: b  \n  # indented comment\n\nc: d#e\n", id="comments-and-blanks"),
    pytest.param("a: http://x:1/p?q=r\nb: é-ü\n", id="colons-and-unicode"),
]

DECLINED = [
    pytest.param("a: 1\n", id="number"),
    pytest.param("a: 0755\n", id="octal"),
    pytest.param("a: 2001-12-14\n", id="timestamp"),
    pytest.param("a: ~\n", id="tilde-null"),
    pytest.param("a: [x, y]\n", id="flow-sequence"),
    pytest.param("a: {b: c}\n", id="flow-mapping"),
    pytest.param("a: &x b\nc: *x\n", id="anchor"),
    pytest.param("a: !!str b\n", id="tag"),
    pytest.param("a: |\n  text\n", id="literal-block"),
    pytest.param("a: b\n  c\n", id="multi-line-plain"),
    pytest.param('a: "x\\ty"\n', id="escaped"),
    pytest.param("a: b # comment\n", id="trailing-comment"),
    pytest.param("a: b\na: c\n", id="duplicate-key"),
    pytest.param("---\na: b\n", id="document-marker"),
    pytest.param("a:\n\tb: c\n", id="tab"),
    pytest.param("- a\n- b\n", id="top-level-sequence"),
    pytest.param("just a string\n", id="scalar"),
    pytest.param("", id="empty"),
    pytest.param("on: x\n", id="boolean-key"),
    pytest.param("'a': b\n", id="quoted-key"),
    pytest.param("a: b: c\n", id="colon-space-in-value"),
    pytest.param("a:\n    b: c\n  d: e\n", id="bad-indentation"),
    pytest.param("a:\n- - b\n", id="nested-inline-sequence"),
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_documents_read_as_pyyaml_reads_them(text: str) -> None:
    assert simple_yaml(text) == yaml.safe_load(text)
    assert simple_yaml(text) is not None


def test_the_shipped_kubeconfig_example_is_read_without_pyyaml() -> None:
    text = (REPO / "integration/cni_config/danm-kubeconfig.yaml").read_text()
    assert simple_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", DECLINED)
def test_anything_else_is_declined(text: str) -> None:
    assert simple_yaml(text) is None


_WORDS = ["name", "server", "token", "on", "yes", "1.5", "x y", "a:b", "a: b", "#x", "-", "é", ""]


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {rng.choice(_WORDS): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if depth < 3 and roll < 0.4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice([*_WORDS, True, False, None, 7, "LS0tLS1" * 20])


@pytest.mark.parametrize("seed", range(300))
def test_whatever_pyyaml_dumps_is_read_identically_or_declined(seed: int) -> None:
    rng = random.Random(seed)
    document = {f"k{i}": _random_value(rng, 0) for i in range(rng.randint(1, 4))}
    text = yaml.safe_dump(document, default_flow_style=rng.choice([False, None]))

    read = simple_yaml(text)

    assert read is None or read == yaml.safe_load(text)
