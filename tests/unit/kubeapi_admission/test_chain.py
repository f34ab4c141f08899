"""The admission chain against real HTTPS webhooks (certificates from tests.kubeapi.pki).

Every webhook kind (allowing, denying, patching, hanging past its timeout, answering garbage,
serving a certificate from a CA other than its caBundle) is checked under failurePolicy Fail
and Ignore, as a mutating and as a validating webhook.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi.admission import AdmissionAttributes, AdmissionChain, AdmissionDenied
from tests.kubeapi.pki import CertificateAuthority, new_ca
from tests.unit.kubeapi_admission.webhook_server import WebhookServer, start_webhook_server

HOOK = "w.test.io"
CM: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cm", "namespace": "ns", "labels": {"app": "demo"}},
    "data": {"k": "v"},
}
CREATE = AdmissionAttributes(
    operation="CREATE",
    group="",
    version="v1",
    resource="configmaps",
    subresource="",
    kind="ConfigMap",
    namespace="ns",
    name="cm",
    obj=CM,
    old_obj=None,
    dry_run=False,
    user="alice",
    groups=["system:authenticated"],
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return new_ca("webhook-ca")


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    return new_ca("some-other-ca")


@pytest.fixture
async def webhook(ca: CertificateAuthority, tmp_path: Path) -> AsyncIterator[WebhookServer]:
    serving = ca.issue_server(["webhook.test.svc"], ["127.0.0.1"])
    server = await start_webhook_server(ca, serving, tmp_path / "webhook")
    yield server
    await server.stop()


@pytest.fixture
async def untrusted_webhook(
    ca: CertificateAuthority, other_ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[WebhookServer]:
    """Serves a certificate from ``other_ca`` while its caBundle says ``ca``."""
    serving = other_ca.issue_server(["webhook.test.svc"], ["127.0.0.1"])
    server = await start_webhook_server(other_ca, serving, tmp_path / "untrusted", trusted_ca=ca)
    yield server
    await server.stop()


@pytest.fixture
async def dns_only_webhook(
    ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[WebhookServer]:
    """A certificate valid only for ``webhook.test.svc``: connecting by IP cannot verify it."""
    serving = ca.issue_server(["webhook.test.svc"], [])
    server = await start_webhook_server(ca, serving, tmp_path / "dns-only")
    yield server
    await server.stop()


@dataclasses.dataclass
class Configs:
    mutating: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    validating: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __call__(self, plural: str) -> list[dict[str, Any]]:
        return {
            "mutatingwebhookconfigurations": self.mutating,
            "validatingwebhookconfigurations": self.validating,
        }[plural]


@pytest.fixture
async def make_chain() -> AsyncIterator[Callable[..., AdmissionChain]]:
    chains: list[AdmissionChain] = []

    def make(configs: Configs, **kwargs: Any) -> AdmissionChain:
        chain = AdmissionChain(configs, **kwargs)
        chains.append(chain)
        return chain

    yield make
    for chain in chains:
        await chain.close()


def webhook_entry(
    server: WebhookServer, path: str, policy: str = "Fail", name: str = HOOK, **extra: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle},
        "rules": [
            {
                "operations": ["*"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
            }
        ],
        "failurePolicy": policy,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 1,
    }
    entry.update(extra)
    return entry


def config(name: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "webhooks": list(webhooks)}


async def run(chain: AdmissionChain, attrs: AdmissionAttributes, mutating: bool) -> Any:
    if mutating:
        return await chain.mutate(attrs)
    await chain.validate(attrs)
    return attrs.obj


# (id, path, use the untrusted server, expected message under Fail or None if admitted)
FAILING_CALLS: list[tuple[str, str, bool, str]] = [
    (
        "hang",
        "/hang",
        False,
        r'Internal error occurred: failed calling webhook "w\.test\.io": failed to call webhook: '
        r'Post "https://127\.0\.0\.1:\d+/hang\?timeout=1s": context deadline exceeded',
    ),
    (
        "garbage",
        "/garbage",
        False,
        r'Internal error occurred: failed calling webhook "w\.test\.io": failed to call webhook: '
        r"response body is not JSON \(.*\): 'this is not an AdmissionReview'",
    ),
    (
        "other-ca",
        "/allow",
        True,
        r'Internal error occurred: failed calling webhook "w\.test\.io": failed to call webhook: '
        r'Post "https://127\.0\.0\.1:\d+/allow\?timeout=1s": tls: failed to verify certificate: '
        r"unable to get local issuer certificate",
    ),
]


@pytest.mark.parametrize("mutating", [True, False], ids=["mutating", "validating"])
@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
@pytest.mark.parametrize(
    ("path", "untrusted", "failure"),
    [pytest.param(p, u, f, id=i) for i, p, u, f in FAILING_CALLS],
)
async def test_unusable_webhooks_follow_the_failure_policy(
    webhook: WebhookServer,
    untrusted_webhook: WebhookServer,
    make_chain: Callable[..., AdmissionChain],
    path: str,
    untrusted: bool,
    failure: str,
    policy: str,
    mutating: bool,
) -> None:
    server = untrusted_webhook if untrusted else webhook
    hooks = [config("cfg", webhook_entry(server, path, policy))]
    configs = Configs(mutating=hooks) if mutating else Configs(validating=hooks)
    chain = make_chain(configs)
    if policy == "Ignore":
        assert await run(chain, CREATE, mutating) == CM
        return
    with pytest.raises(AdmissionDenied) as caught:
        await run(chain, CREATE, mutating)
    assert (caught.value.code, caught.value.reason) == (500, "InternalError")
    assert re.fullmatch(failure, caught.value.message, flags=re.DOTALL), caught.value.message
    if untrusted:
        assert server.received == [], "the request must not reach an unverified server"


@pytest.mark.parametrize("mutating", [True, False], ids=["mutating", "validating"])
@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_allowing_webhook_admits_unchanged(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str, mutating: bool
) -> None:
    hooks = [config("cfg", webhook_entry(webhook, "/allow", policy, timeoutSeconds=7))]
    chain = make_chain(Configs(mutating=hooks) if mutating else Configs(validating=hooks))
    assert await run(chain, CREATE, mutating) == CM
    (call,) = webhook.calls("/allow")
    assert call.query == {"timeout": "7s"}
    assert call.review["apiVersion"] == "admission.k8s.io/v1"
    assert call.request["object"] == CM
    assert call.request["operation"] == "CREATE"
    assert call.request["userInfo"] == {"username": "alice", "groups": ["system:authenticated"]}


@pytest.mark.parametrize("mutating", [True, False], ids=["mutating", "validating"])
@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_denying_webhook_denies_whatever_the_policy(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str, mutating: bool
) -> None:
    hooks = [config("cfg", webhook_entry(webhook, "/deny", policy))]
    chain = make_chain(Configs(mutating=hooks) if mutating else Configs(validating=hooks))
    with pytest.raises(AdmissionDenied) as caught:
        await run(chain, CREATE, mutating)
    assert (caught.value.code, caught.value.reason) == (403, "Forbidden")
    assert caught.value.message == 'admission webhook "w.test.io" denied the request: no thanks'


async def test_denial_without_status_is_400_without_explanation(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    chain = make_chain(Configs(validating=[config("c", webhook_entry(webhook, "/deny-bare"))]))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(CREATE)
    assert (caught.value.code, caught.value.reason) == (400, "")
    assert (
        caught.value.message
        == 'admission webhook "w.test.io" denied the request without explanation'
    )


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_patching_webhook_patches(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str
) -> None:
    chain = make_chain(
        Configs(mutating=[config("c", webhook_entry(webhook, "/patch/added", policy))])
    )
    patched = await chain.mutate(CREATE)
    assert patched is not None
    assert patched["metadata"]["labels"] == {"app": "demo", "added": "yes"}
    assert CM["metadata"]["labels"] == {"app": "demo"}, "the input object must stay untouched"


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_validating_webhook_returning_a_patch_is_a_calling_error(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str
) -> None:
    chain = make_chain(
        Configs(validating=[config("c", webhook_entry(webhook, "/patch/x", policy))])
    )
    if policy == "Ignore":
        await chain.validate(CREATE)
        return
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(CREATE)
    assert caught.value.code == 500
    assert caught.value.message == (
        'Internal error occurred: failed calling webhook "w.test.io": '
        "received invalid webhook response: validating webhook may not return response.patch"
    )


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_unappliable_patch_fails_whatever_the_policy(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str
) -> None:
    chain = make_chain(
        Configs(mutating=[config("c", webhook_entry(webhook, "/bad-patch", policy))])
    )
    with pytest.raises(AdmissionDenied) as caught:
        await chain.mutate(CREATE)
    assert (caught.value.code, caught.value.reason) == (500, "InternalError")
    assert 'admission webhook "w.test.io" returned a patch that cannot be applied' in (
        caught.value.message
    )
    assert '"/does" does not exist' in caught.value.message


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/wrong-uid", 'received invalid webhook response: expected response.uid="'),
        (
            "/no-kind",
            "received invalid webhook response: expected webhook response of "
            "admission.k8s.io/v1, Kind=AdmissionReview, got , Kind=",
        ),
        ("/http-500", 'failed to call webhook: the server responded with HTTP 500 ("webhook'),
        ("/nowhere", "failed to call webhook: the server responded with HTTP 404"),
    ],
)
async def test_invalid_answers_are_calling_errors(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], path: str, words: str
) -> None:
    chain = make_chain(Configs(validating=[config("c", webhook_entry(webhook, path))]))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(CREATE)
    assert caught.value.code == 500
    assert words in caught.value.message


async def test_mutating_webhooks_run_in_name_order_each_seeing_the_last_patch(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    configs = Configs(
        mutating=[
            config(
                "b-second",
                webhook_entry(webhook, "/patch/b1", name="b1.test.io"),
                webhook_entry(webhook, "/patch/b2", name="b2.test.io"),
            ),
            config("a-first", webhook_entry(webhook, "/patch/a", name="a.test.io")),
        ]
    )
    patched = await make_chain(configs).mutate(CREATE)
    assert [c.path for c in webhook.received] == ["/patch/a", "/patch/b1", "/patch/b2"]
    seen = [set(c.request["object"]["metadata"]["labels"]) for c in webhook.received]
    assert seen == [{"app"}, {"app", "a"}, {"app", "a", "b1"}]
    assert patched is not None
    assert set(patched["metadata"]["labels"]) == {"app", "a", "b1", "b2"}


@pytest.mark.parametrize(("policy", "calls"), [("IfNeeded", 2), ("Never", 1)])
async def test_reinvocation_if_needed(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str, calls: int
) -> None:
    configs = Configs(
        mutating=[
            config("a", webhook_entry(webhook, "/allow", name="a.io", reinvocationPolicy=policy)),
            config("b", webhook_entry(webhook, "/patch/late", name="b.io")),
        ]
    )
    await make_chain(configs).mutate(CREATE)
    allow_calls = webhook.calls("/allow")
    assert len(allow_calls) == calls
    assert len(webhook.calls("/patch/late")) == 1
    if calls == 2:
        assert allow_calls[1].request["object"]["metadata"]["labels"]["late"] == "yes"


async def test_validating_webhooks_run_concurrently(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    # NB: each answers only once both are waiting, so called one after the other they would
    # both time out and fail the request.
    configs = Configs(
        validating=[
            config(
                "c",
                webhook_entry(webhook, "/barrier/2", name="one.io", timeoutSeconds=10),
                webhook_entry(webhook, "/barrier/2", name="two.io", timeoutSeconds=10),
            )
        ]
    )
    await make_chain(configs).validate(CREATE)
    assert len(webhook.calls("/barrier/2")) == 2


async def test_first_failure_in_configuration_order_wins(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    configs = Configs(
        validating=[
            config("b", webhook_entry(webhook, "/deny", name="second.io")),
            config("a", webhook_entry(webhook, "/deny-bare", name="first.io")),
        ]
    )
    with pytest.raises(AdmissionDenied, match=r'^admission webhook "first\.io" denied'):
        await make_chain(configs).validate(CREATE)
    assert len(webhook.received) == 2


UPDATE = dataclasses.replace(
    CREATE,
    operation="UPDATE",
    old_obj=CM,
    obj={**CM, "data": {"k": "new"}},
)
DELETE = dataclasses.replace(CREATE, operation="DELETE", old_obj=CM, obj=None)


@pytest.mark.parametrize(
    ("attrs", "options_kind"), [(UPDATE, "UpdateOptions"), (DELETE, "DeleteOptions")]
)
async def test_update_and_delete_are_reviewed_with_the_old_object(
    webhook: WebhookServer,
    make_chain: Callable[..., AdmissionChain],
    attrs: AdmissionAttributes,
    options_kind: str,
) -> None:
    chain = make_chain(Configs(validating=[config("c", webhook_entry(webhook, "/allow"))]))
    await chain.validate(attrs)
    (call,) = webhook.received
    assert call.request["operation"] == attrs.operation
    assert call.request["oldObject"] == CM
    assert call.request["object"] == attrs.obj
    assert call.request["options"]["kind"] == options_kind


async def test_patch_on_delete_is_an_internal_error(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    chain = make_chain(Configs(mutating=[config("c", webhook_entry(webhook, "/patch/x"))]))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.mutate(DELETE)
    assert caught.value.code == 500
    assert 'admission webhook "w.test.io" attempted to modify the object' in caught.value.message


DRY_RUN = dataclasses.replace(CREATE, dry_run=True)


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
@pytest.mark.parametrize("side_effects", ["Some", "Unknown"])
async def test_dry_run_with_side_effects_is_a_bad_request(
    webhook: WebhookServer,
    make_chain: Callable[..., AdmissionChain],
    side_effects: str,
    policy: str,
) -> None:
    entry = webhook_entry(webhook, "/allow", policy, sideEffects=side_effects)
    chain = make_chain(Configs(validating=[config("c", entry)]))
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(DRY_RUN)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message == 'admission webhook "w.test.io" does not support dry run'
    assert webhook.received == []
    await chain.validate(CREATE)  # NB: the same webhook is fine when nothing is dry.


@pytest.mark.parametrize("side_effects", ["None", "NoneOnDryRun"])
async def test_dry_run_reaches_side_effect_free_webhooks(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], side_effects: str
) -> None:
    entry = webhook_entry(webhook, "/patch/dry", sideEffects=side_effects)
    patched = await make_chain(Configs(mutating=[config("c", entry)])).mutate(DRY_RUN)
    assert patched is not None
    assert patched["metadata"]["labels"]["dry"] == "yes"
    (call,) = webhook.received
    assert call.request["dryRun"] is True
    assert call.request["options"]["dryRun"] == ["All"]


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_dry_run_with_unset_side_effects_follows_the_policy(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain], policy: str
) -> None:
    entry = webhook_entry(webhook, "/allow", policy)
    del entry["sideEffects"]
    chain = make_chain(Configs(validating=[config("c", entry)]))
    if policy == "Ignore":
        await chain.validate(DRY_RUN)
    else:
        with pytest.raises(AdmissionDenied, match="Webhook SideEffects is nil"):
            await chain.validate(DRY_RUN)
    assert webhook.received == []


@pytest.mark.parametrize(
    ("versions", "sent"),
    [
        (["v1beta1"], "admission.k8s.io/v1beta1"),
        (["v1beta1", "v1"], "admission.k8s.io/v1beta1"),
        (["v2", "v1"], "admission.k8s.io/v1"),
    ],
)
async def test_review_version_is_the_first_supported_one(
    webhook: WebhookServer,
    make_chain: Callable[..., AdmissionChain],
    versions: list[str],
    sent: str,
) -> None:
    entry = webhook_entry(webhook, "/allow", admissionReviewVersions=versions)
    await make_chain(Configs(validating=[config("c", entry)])).validate(CREATE)
    (call,) = webhook.received
    assert call.review["apiVersion"] == sent


async def test_no_supported_review_version_is_a_calling_error(
    webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    entry = webhook_entry(webhook, "/allow", admissionReviewVersions=["v2"])
    with pytest.raises(AdmissionDenied, match=r"does not accept known AdmissionReview versions"):
        await make_chain(Configs(validating=[config("c", entry)])).validate(CREATE)


def service_entry(server: WebhookServer, name: str, path: str) -> dict[str, Any]:
    entry = webhook_entry(server, path)
    entry["clientConfig"] = {
        "service": {"namespace": "test", "name": name, "path": path},
        "caBundle": server.ca_bundle,
    }
    return entry


async def test_service_is_resolved_and_verified_by_its_dns_name(
    dns_only_webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    resolved: list[tuple[str, str, int]] = []

    def resolve(namespace: str, name: str, port: int) -> str:
        resolved.append((namespace, name, port))
        return dns_only_webhook.base_url

    configs = Configs(
        validating=[config("c", service_entry(dns_only_webhook, "webhook", "/allow"))]
    )
    await make_chain(configs, resolve_service=resolve).validate(CREATE)
    assert resolved == [("test", "webhook", 443)]
    assert len(dns_only_webhook.calls("/allow")) == 1


async def test_service_name_not_in_certificate_fails_verification(
    dns_only_webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    configs = Configs(validating=[config("c", service_entry(dns_only_webhook, "other", "/allow"))])
    chain = make_chain(configs, resolve_service=lambda ns, name, port: dns_only_webhook.base_url)
    with pytest.raises(AdmissionDenied) as caught:
        await chain.validate(CREATE)
    assert 'Post "https://other.test.svc:443/allow?timeout=1s"' in caught.value.message
    assert (
        "tls: failed to verify certificate: Hostname mismatch, certificate is not valid for "
        "'other.test.svc'"
    ) in caught.value.message
    assert dns_only_webhook.received == []


async def test_url_by_ip_needs_an_ip_in_the_certificate(
    dns_only_webhook: WebhookServer, make_chain: Callable[..., AdmissionChain]
) -> None:
    chain = make_chain(Configs(validating=[config("c", webhook_entry(dns_only_webhook, "/allow"))]))
    with pytest.raises(AdmissionDenied, match="IP address mismatch"):
        await chain.validate(CREATE)
