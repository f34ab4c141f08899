"""Names and magic values of DANM's API that every binary must agree on.

Kept in one place so that the CNI, the webhook and the watchers cannot drift apart on, say, the
spelling of a kind or the annotation key (values from danm-behaviour.md §1.1 and §11.5). REST
paths, plurals and scopes for the kube adapter live in ``common.model.resources``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

API_GROUP: Final = "danm.k8s.io"
API_VERSION: Final = "v1"
#: The ``apiVersion`` every DANM object carries.
API_GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"


class NetworkKind(StrEnum):
    """The three network APIs a Pod can connect to; values are the exact ``kind`` strings."""

    DANMNET = "DanmNet"
    TENANT_NETWORK = "TenantNetwork"
    CLUSTER_NETWORK = "ClusterNetwork"


KIND_DANMNET: Final = NetworkKind.DANMNET.value
KIND_TENANT_NETWORK: Final = NetworkKind.TENANT_NETWORK.value
KIND_CLUSTER_NETWORK: Final = NetworkKind.CLUSTER_NETWORK.value
KIND_DANMEP: Final = "DanmEp"
KIND_TENANT_CONFIG: Final = "TenantConfig"
ALL_KINDS: Final = (
    KIND_DANMNET,
    KIND_TENANT_NETWORK,
    KIND_CLUSTER_NETWORK,
    KIND_DANMEP,
    KIND_TENANT_CONFIG,
)

PLURAL_DANMNETS: Final = "danmnets"
PLURAL_TENANT_NETWORKS: Final = "tenantnetworks"
PLURAL_CLUSTER_NETWORKS: Final = "clusternetworks"
PLURAL_DANMEPS: Final = "danmeps"
PLURAL_TENANT_CONFIGS: Final = "tenantconfigs"
PLURALS: Final[dict[str, str]] = {
    KIND_DANMNET: PLURAL_DANMNETS,
    KIND_TENANT_NETWORK: PLURAL_TENANT_NETWORKS,
    KIND_CLUSTER_NETWORK: PLURAL_CLUSTER_NETWORKS,
    KIND_DANMEP: PLURAL_DANMEPS,
    KIND_TENANT_CONFIG: PLURAL_TENANT_CONFIGS,
}
#: Kinds whose objects live in a namespace; ClusterNetwork and TenantConfig are cluster scoped.
NAMESPACED_KINDS: Final = frozenset({KIND_DANMNET, KIND_TENANT_NETWORK, KIND_DANMEP})

#: Pod annotation holding the list of network connections (§2). Matched exactly, not by substring.
INTERFACES_ANNOTATION: Final = "danm.k8s.io/interfaces"
#: Name of the network a Pod without connections falls back to (§2).
DEFAULT_NETWORK_NAME: Final = "default"

#: Keys of a connection in the Pod annotation, one per network kind.
CONNECTION_KEYS: Final[dict[str, NetworkKind]] = {
    "network": NetworkKind.DANMNET,
    "tenantNetwork": NetworkKind.TENANT_NETWORK,
    "clusterNetwork": NetworkKind.CLUSTER_NETWORK,
}

#: ``ip``/``ip6`` keywords of a network connection (case-sensitive).
IP_DYNAMIC: Final = "dynamic"
IP_NONE: Final = "none"

#: NetworkType values with a meaning of their own; compare them case-insensitively (§13.7).
NETWORK_TYPE_IPVLAN: Final = "ipvlan"
NETWORK_TYPE_SRIOV: Final = "sriov"
NETWORK_TYPE_MACVLAN: Final = "macvlan"
NETWORK_TYPE_FLANNEL: Final = "flannel"
#: Types DANM configures itself (built-in IPVLAN, generated sriov/macvlan configs), lower case.
DYNAMIC_NETWORK_TYPES: Final = frozenset(
    {"", NETWORK_TYPE_IPVLAN, NETWORK_TYPE_SRIOV, NETWORK_TYPE_MACVLAN}
)

#: Container interface naming (§3.5).
DEFAULT_IFNAME_PREFIX: Final = "eth"
FIRST_IFNAME: Final = "eth0"
LEGACY_NAMING_SCHEME: Final = "legacy"
#: Linux IFNAMSIZ is 16 including the terminating NUL.
MAX_IFNAME_LENGTH: Final = 15
#: Host interface names derived from a network (§9).
VXLAN_HOST_IFNAME_PREFIX: Final = "vx_"

#: Webhook limit on NetworkID for dynamic types at the seed version (§7, §11.5).
MAX_NETWORK_ID_LENGTH: Final = 11
MIN_VLAN_ID: Final = 1
MAX_VLAN_ID: Final = 4094
MIN_VXLAN_ID: Final = 1
MAX_VXLAN_ID: Final = 16777214

DEFAULT_CNI_DIR: Final = "/etc/cni/net.d"
CNI_VERSION: Final = "0.3.1"
#: Text of the API server's 409 Conflict, as the original matched it (§11.5).
OPTIMISTIC_LOCK_MESSAGE: Final = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
