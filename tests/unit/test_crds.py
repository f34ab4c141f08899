"""The CRD manifests in integration/crds: names, scopes, structural schemas, patterns, limits.

A real apiserver would refuse a non-structural CRD and silently prune any field a component
writes that the schema forgets, so both are checked here rather than discovered on a cluster.
"""

from __future__ import annotations

import ipaddress
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubeapi import openapi

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "integration" / "crds"

# kind -> (directories, plural, singular, shortNames, categories, scope); danm-behaviour.md §1.1
EXPECTED_NAMES: dict[str, tuple[tuple[str, ...], str, str, list[str], list[str], str]] = {
    "DanmNet": (("lightweight",), "danmnets", "danmnet", ["dn", "dnet"], ["all"], "Namespaced"),
    "DanmEp": (("lightweight", "production"), "danmeps", "danmep", ["de", "dep"], [], "Namespaced"),
    "TenantNetwork": (
        ("production",),
        "tenantnetworks",
        "tenantnetwork",
        ["tn", "tnet"],
        ["all"],
        "Namespaced",
    ),
    "ClusterNetwork": (
        ("production",),
        "clusternetworks",
        "clusternetwork",
        ["cn", "cnet"],
        ["all"],
        "Cluster",
    ),
    "TenantConfig": (
        ("production",),
        "tenantconfigs",
        "tenantconfig",
        ["tc", "tconf"],
        ["all"],
        "Cluster",
    ),
}
NETWORK_KINDS = ("DanmNet", "TenantNetwork", "ClusterNetwork")


def load_crd(directory: str, kind: str) -> dict[str, Any]:
    with (CRD_DIR / directory / f"{kind}.yaml").open() as stream:
        documents = list(yaml.safe_load_all(stream))
    assert len(documents) == 1, f"{directory}/{kind}.yaml must hold exactly one CRD"
    crd: dict[str, Any] = documents[0]
    return crd


def schema_of(kind: str) -> dict[str, Any]:
    directory = EXPECTED_NAMES[kind][0][0]
    schema: dict[str, Any] = load_crd(directory, kind)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def crd_files() -> list[tuple[str, str]]:
    return [(d, kind) for kind, row in EXPECTED_NAMES.items() for d in row[0]]


def test_crd_directories_hold_exactly_the_expected_files():
    found = sorted(str(p.relative_to(CRD_DIR)) for p in CRD_DIR.rglob("*.yaml"))
    assert found == sorted(f"{d}/{kind}.yaml" for d, kind in crd_files())


@pytest.mark.parametrize(("directory", "kind"), crd_files())
def test_crd_names_scope_and_version(directory, kind):
    crd = load_crd(directory, kind)
    _, plural, singular, short_names, categories, scope = EXPECTED_NAMES[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.danm.k8s.io"
    spec = crd["spec"]
    assert spec["group"] == "danm.k8s.io"
    assert spec["scope"] == scope
    names = spec["names"]
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["plural"] == plural
    assert names["singular"] == singular
    assert names["shortNames"] == short_names
    assert names.get("categories", []) == categories
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)


@pytest.mark.parametrize(("directory", "kind"), crd_files())
def test_crd_schema_is_structural(directory, kind):
    schema = load_crd(directory, kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert openapi.structural_errors(schema) == []
    assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])


def test_danmep_crd_file_is_identical_in_both_directories():
    lightweight = (CRD_DIR / "lightweight" / "DanmEp.yaml").read_bytes()
    assert lightweight == (CRD_DIR / "production" / "DanmEp.yaml").read_bytes()


def test_network_kinds_share_one_spec_schema():
    specs = [schema_of(kind)["properties"]["spec"] for kind in NETWORK_KINDS]
    assert specs[0] == specs[1] == specs[2]


def _schema_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for key in json_path.strip(".").split("."):
        if node is None:
            return None
        node = node.get("properties", {}).get(key)
    return node


@pytest.mark.parametrize(("directory", "kind"), crd_files())
def test_printer_columns_point_at_schema_fields(directory, kind):
    version = load_crd(directory, kind)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version.get("additionalPrinterColumns", []):
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        target = _schema_at(schema, column["jsonPath"])
        assert target is not None, f"column {column['name']} points nowhere"
        assert target["type"] == column["type"], column["name"]


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        *[
            (
                kind,
                ["NetworkType", "NetworkID", "CIDR", "Net6", "HostDevice", "VLAN", "VxLAN", "Age"],
            )
            for kind in NETWORK_KINDS
        ],
        ("DanmEp", ["Pod", "Network", "Interface", "Address", "Host", "Age"]),
    ],
)
def test_default_printer_columns(kind, columns):
    version = load_crd(EXPECTED_NAMES[kind][0][0], kind)["spec"]["versions"][0]
    shown = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == columns


# --------------------------------------------------------------------------------------------
# Address patterns

NET6_ACCEPTED = [
    "",
    "2001:db8::/32",
    "2001:db8::/64",
    "2001:0db8:0000:0000:0000:0000:0000:0000/128",
    "fd00::/8",
    "::/0",
    "::1/128",
    "fe80::1/64",
    "2001:db8:1:2:3:4:5:6/127",
    "1::/16",
    "1:2:3:4:5:6:7::/112",
    "::2:3:4:5:6:7:8/64",
    "2001:DB8:ABCD::/48",
    "::ffff:192.168.1.1/96",
    "64:ff9b::10.0.0.1/96",
    "2001:db8::/0",
    "2001:db8::/100",
]
NET6_REJECTED = [
    "2001:db8::",  # prefix length is mandatory
    "2001:db8::/129",
    "2001:db8::/064",
    "2001:db8::/-1",
    "2001:db8:::/64",
    "2001:db8::1::2/64",
    "1:2:3:4:5:6:7:8:9/64",
    "1:2:3:4:5:6:7/64",
    "12345::/64",
    "2001:db8::g/64",
    "10.0.0.0/8",
    "fe80::1%eth0/64",  # zone ids are not prefixes
    " 2001:db8::/64",
    "2001:db8::/64 ",
    "2001:db8::/64\n",  # Go's `$` does not match before a trailing newline
    "::ffff:256.1.1.1/96",
    "sd::/64",  # the seed's pattern accepted these thanks to its `s*`/`d` typos
    "2001:db8::/6d",
]


def _options_property(name: str) -> dict[str, Any]:
    options: dict[str, Any] = schema_of("DanmNet")["properties"]["spec"]["properties"]["Options"]
    prop: dict[str, Any] = options["properties"][name]
    return prop


def _matches(schema: dict[str, Any], value: str) -> bool:
    return openapi.validate(schema, value) == []


@pytest.mark.parametrize("value", NET6_ACCEPTED)
def test_net6_pattern_accepts(value):
    assert _matches(_options_property("net6"), value)


@pytest.mark.parametrize("value", NET6_REJECTED)
def test_net6_pattern_rejects(value):
    assert not _matches(_options_property("net6"), value)


def _random_ipv6_text(rng: random.Random) -> str:
    address = ipaddress.IPv6Address(rng.getrandbits(128) & ~((1 << rng.randrange(0, 129)) - 1))
    return rng.choice([address.compressed, address.exploded, str(address).upper()])


def test_net6_pattern_agrees_with_ipaddress_on_generated_values():
    rng = random.Random(20190901)  # NB: fixed seed, so a failure is reproducible
    schema = _options_property("net6")
    for _ in range(2000):
        text = f"{_random_ipv6_text(rng)}/{rng.randrange(0, 129)}"
        if rng.random() < 0.3:  # mutate some into near misses
            position = rng.randrange(len(text))
            text = text[:position] + rng.choice(":/0fgx.") + text[position + 1 :]
        _, _, prefix = text.partition("/")
        try:
            ipaddress.IPv6Network(text, strict=False)
            # NB: Go's parsers (and our pattern) refuse a prefix length with a leading zero.
            valid = prefix == str(int(prefix))
        except ValueError:
            valid = False
        assert _matches(schema, text) is valid, text


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("10.0.0.0/24", True),
        ("0.0.0.0/0", True),
        ("255.255.255.255/32", True),
        ("192.168.1.64/26", True),
        ("10.0.0.0/33", False),
        ("10.0.0.0", False),
        ("256.0.0.0/8", False),
        ("10.0.0/24", False),
        ("010.0.0.0/24", False),
        ("2001:db8::/64", False),
        ("10.0.0.0/24\n", False),
    ],
)
def test_cidr_pattern(value, accepted):
    assert _matches(_options_property("cidr"), value) is accepted


@pytest.mark.parametrize(
    ("value", "bounds_accept", "cursor_accepts"),
    [
        ("", True, True),
        ("10.0.0.1", True, True),
        ("10.0.0.256", False, False),
        # NB: the IPAM writes the lastIp cursor as address/prefix; start and end stay plain.
        ("10.0.0.1/24", False, True),
        ("10.0.0.1/33", False, False),
    ],
)
def test_allocation_pool_address_pattern(value, bounds_accept, cursor_accepts):
    pool = _options_property("allocation_pool")["properties"]
    for member in ("start", "end"):
        assert _matches(pool[member], value) is bounds_accept, member
    assert _matches(pool["lastIp"], value) is cursor_accepts


# --------------------------------------------------------------------------------------------
# Numeric limits


def _network(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "n", "namespace": "default"},
        "spec": {"NetworkID": "n", "Options": options},
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vlan", 0, None),
        ("vlan", 4094, None),
        ("vlan", 4095, "should be less than or equal to 4094"),
        ("vlan", -1, "should be greater than or equal to 0"),
        ("vxlan", 0, None),
        ("vxlan", 16777214, None),
        ("vxlan", 16777215, "should be less than or equal to 16777214"),
        ("rt_tables", 0, None),
        ("rt_tables", 255, None),
        ("rt_tables", 256, "should be less than or equal to 255"),
        ("rt_tables", 300, "should be less than or equal to 255"),
    ],
)
def test_integer_limits(field, value, message):
    errors = openapi.validate(schema_of("DanmNet"), _network({field: value}))
    if message is None:
        assert errors == []
    else:
        path = f"spec.Options.{field}"
        assert errors == [
            openapi.FieldError(
                path, "FieldValueInvalid", f"Invalid value: {value}: {path} in body {message}"
            )
        ]


def test_vlan_must_be_an_integer():
    [error] = openapi.validate(schema_of("DanmNet"), _network({"vlan": "500"}))
    assert error.type == "FieldValueTypeInvalid"
    assert error.field == "spec.Options.vlan"


# --------------------------------------------------------------------------------------------
# Nothing our components (or the Go original) write is pruned away

GO_WRITTEN_NETWORK: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "ClusterNetwork",
    "metadata": {"name": "external", "resourceVersion": "42"},
    "spec": {
        "NetworkID": "external",
        "NetworkType": "ipvlan",
        "AllowedTenants": ["a"],
        "Options": {
            "host_device": "ens4",
            "device_pool": "",
            "container_prefix": "",
            "cidr": "10.0.0.0/30",
            "alloc": "kA==",
            "allocation_pool": {"start": "10.0.0.1", "end": "10.0.0.2", "lastIp": "10.0.0.1"},
            "net6": "2001:db8::/64",
            "routes": {"10.1.0.0/16": "10.0.0.1"},
            "routes6": {},
            "alloc6": "gA==",
            "allocation_pool_v6": {
                "cidr": "2001:db8::/120",
                "start": "2001:db8::1",
                "end": "2001:db8::fe",
                "lastIp": "",
            },
            "rt_tables": 0,
            "vlan": 0,
            "vxlan": 0,
        },
    },
}
GO_WRITTEN_DANMEP: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "DanmEp",
    "metadata": {"name": "uuid", "namespace": "default", "labels": {"app": "x"}},
    "spec": {
        "NetworkName": "external",
        "NetworkType": "ipvlan",
        "EndpointID": "uuid",
        "Interface": {
            "Name": "eth1",
            "Address": "",
            "AddressIPv6": "",
            "MacAddress": "fa:16:3e:12:34:56",
            "proutes": None,
            "proutes6": None,
            "DeviceID": "0000:af:06.0",
        },
        "Host": "node-1",
        "Pod": "pod",
        "PodUID": "0b7e8a52-6c1d-4f0e-8a3b-5c2d9e7f1a64",
        "CID": "abc",
        "netns": "/proc/1/ns/net",
        "apiType": "",
    },
}
GO_WRITTEN_TENANTCONFIG: dict[str, Any] = {
    "apiVersion": "danm.k8s.io/v1",
    "kind": "TenantConfig",
    "metadata": {"name": "tc"},
    "hostDevices": [{"name": "ens4", "vniType": "", "vniRange": "", "alloc": ""}],
    "networkIds": {"flannel": "flannel"},
}


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        ("ClusterNetwork", GO_WRITTEN_NETWORK),
        ("DanmNet", {**GO_WRITTEN_NETWORK, "kind": "DanmNet"}),
        ("TenantNetwork", {**GO_WRITTEN_NETWORK, "kind": "TenantNetwork"}),
        ("DanmEp", GO_WRITTEN_DANMEP),
        ("TenantConfig", GO_WRITTEN_TENANTCONFIG),
    ],
)
def test_objects_as_danm_writes_them_survive_decoding_unchanged(kind, obj):
    schema = schema_of(kind)
    decoded = openapi.apply_defaults(schema, openapi.prune(schema, obj))
    assert decoded == obj
    assert openapi.validate(schema, decoded) == []


# NB: which schema node describes each model class of common.model (another engineer's code).
_MODEL_NODES = [
    ("common.model.network", "NetworkSpec", "DanmNet", ("spec",)),
    ("common.model.network", "NetworkOptions", "DanmNet", ("spec", "Options")),
    ("common.model.network", "IpPool", "DanmNet", ("spec", "Options", "allocation_pool")),
    ("common.model.network", "IpPoolV6", "DanmNet", ("spec", "Options", "allocation_pool_v6")),
    ("common.model.danmep", "DanmEpSpec", "DanmEp", ("spec",)),
    ("common.model.danmep", "DanmEpInterface", "DanmEp", ("spec", "Interface")),
    ("common.model.tenantconfig", "TenantConfig", "TenantConfig", ()),
    ("common.model.tenantconfig", "HostDeviceProfile", "TenantConfig", ("hostDevices", None)),
]


@pytest.mark.parametrize(("module", "class_name", "kind", "path"), _MODEL_NODES)
def test_every_key_the_models_write_is_in_the_schema(module, class_name, kind, path):
    model = getattr(pytest.importorskip(module), class_name, None)
    if model is None or not hasattr(model, "JSON_FIELDS"):
        pytest.skip(f"{module}.{class_name} has no JSON_FIELDS table")
    node = schema_of(kind)
    for step in path:
        node = node["items"] if step is None else node["properties"][step]
    keys = {field.key for field in model.JSON_FIELDS}
    assert keys - set(node["properties"]) == set()


# --------------------------------------------------------------------------------------------
# schema/*.yaml documents every field


def _property_names(schema: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for name, sub in (schema.get("properties") or {}).items():
        names.add(name)
        names |= _property_names(sub)
    items = schema.get("items")
    if isinstance(items, dict):
        names |= _property_names(items)
    return names


@pytest.mark.parametrize("kind", sorted(EXPECTED_NAMES))
def test_schema_template_mentions_every_field(kind):
    text = (REPO / "schema" / f"{kind}.yaml").read_text()
    documented = set(re.findall(r"^[\s#-]*([A-Za-z_0-9]+):", text, flags=re.MULTILINE))
    missing = _property_names(schema_of(kind)) - documented
    assert missing == set(), f"schema/{kind}.yaml does not document {sorted(missing)}"


# NB: the IPAM and the CRDs are written apart; a field the IPAM writes that the schema refuses
# (a 422 on every allocation) or prunes is only visible when the two meet, so they meet here.
@pytest.mark.parametrize("kind", NETWORK_KINDS)
@pytest.mark.parametrize(
    ("options", "ip", "ip6"),
    [
        ({"cidr": "10.0.0.0/24"}, "dynamic", ""),
        ({"cidr": "10.0.0.0/24", "net6": "2001:db8::/64"}, "dynamic", "dynamic"),
        ({"net6": "2001:db8::/64"}, "", "dynamic"),
        ({"cidr": "10.0.0.0/24", "net6": "2001:db8::/64"}, "10.0.0.9/24", "2001:db8::9/64"),
    ],
)
def test_objects_the_ipam_writes_pass_the_crd_schema(kind, options, ip, ip6):
    from common.ipam import network_ipam
    from common.model import network_from_dict

    body = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "net", **({"namespace": "ns"} if kind != "ClusterNetwork" else {})},
        "spec": {"NetworkID": "net", "NetworkType": "ipvlan", "Options": dict(options)},
    }
    network = network_from_dict(body)
    for _ in range(2):  # NB: the second round reads back what the first one wrote (lastIp).
        network, ip4_address, ip6_address = network_ipam.reserve_for(
            network, "dynamic" if ip else "", "dynamic" if ip6 else ""
        )
        assert ip4_address or ip6_address
    network, _, _ = network_ipam.reserve_for(network, ip, ip6)
    written = network.to_dict()
    schema = schema_of(kind)
    assert openapi.validate(schema, written) == []
    assert openapi.prune(schema, written) == written
