"""Session fixtures of the image tier: one private Docker daemon and the four images, built once.

Building takes a couple of minutes (debootstrap of the stand-in base is cached under build/),
so every test of the tier shares one daemon and one build of each image.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# NB: the svcwatcher tier's fixture: the API stand-in with the DanmEp/DanmNet CRDs and the
# "vnf" and "other" namespaces.
from tests.e2e.svcwatcher.conftest import cluster  # noqa: F401
from tests.images.docker import (
    DockerDaemon,
    build_image,
    import_busybox_base,
    import_python_base,
    start_daemon,
)

COMPONENTS = ("webhook", "netwatcher", "svcwatcher", "cni-installer")


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    logs = tmp_path_factory.mktemp("docker")
    daemon = start_daemon(logs / "dockerd.log")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def images(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Component name -> image tag, every Dockerfile under integration/docker built."""
    workdir = tmp_path_factory.mktemp("image-build")
    import_python_base(docker_daemon, workdir)
    import_busybox_base(docker_daemon, workdir)
    return {
        component: build_image(
            docker_daemon, component, f"danm-test/{component}:dev", workdir / f"{component}.log"
        )
        for component in COMPONENTS
    }
