"""CNI STATUS: can DANM serve an ADD right now?

containerd (2.0+) and CRI-O poll STATUS and mark the node's network not ready while it fails.
ADD needs two things only DANM can vouch for: the Kubernetes API (the Pod, the networks and every
IP reservation live there) and a writable state directory (the node records DEL relies on).
Either missing is code 50, "plugin not available". Any HTTP answer from the API, even 403 or
404, means it is reachable: STATUS asks for a ClusterNetwork named ``default`` because the CNI's
RBAC grants ``get`` on it and the answer is small whether it exists or not.
"""

from __future__ import annotations

import os

from common.cni.types import CniError, ErrorCode
from common.io.kube import KubeApi, KubeApiError, KubeError
from common.model.resources import CLUSTERNETWORKS


def cmd_status(*, api: KubeApi | None, api_problem: str, state_dir: str) -> None:
    """Return when ADD could work; ``CniError`` 50 naming the cause otherwise."""
    if api is None:
        raise CniError(
            ErrorCode.PLUGIN_NOT_AVAILABLE,
            "danm cannot talk to the Kubernetes API",
            api_problem or "no API client could be built",
        )
    try:
        api.get(CLUSTERNETWORKS, None, "default")
    except KubeApiError:
        pass
    except KubeError as error:
        raise CniError(
            ErrorCode.PLUGIN_NOT_AVAILABLE, "danm cannot reach the Kubernetes API", str(error)
        ) from error
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
    except OSError as error:
        raise CniError(
            ErrorCode.PLUGIN_NOT_AVAILABLE,
            f"danm cannot create its state directory {state_dir}",
            str(error),
        ) from error
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise CniError(
            ErrorCode.PLUGIN_NOT_AVAILABLE, f"danm cannot write its state directory {state_dir}"
        )
