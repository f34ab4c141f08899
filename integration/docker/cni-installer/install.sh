#!/bin/sh
# Installs the DANM CNI on the node this Pod runs on, then keeps its API credentials fresh.
#
# Writes, under HOST_ROOT (the node's / mounted into the Pod):
#   opt/cni/bin/danm, opt/cni/bin/fakeipam     the zipapps from BUNDLE_DIR (replaced atomically)
#   etc/kubernetes/danm/ca.crt, token           the Pod's service-account CA and token
#   etc/kubernetes/danm/danm-kubeconfig.yaml    a kubeconfig using them (tokenFile)
#   etc/cni/net.d/00-danm.conf                  the CNI config, pointing at that kubeconfig
# Why a loop: projected service-account tokens expire (one hour by default) and kubelet rotates
# the file inside the Pod; the CNI runs on the host, outside any Pod, so this copies the fresh
# token to the node every REFRESH_SECONDS. Nothing is removed on exit: taking the CNI away
# while the installer restarts would break every Pod start on the node.
#
# Environment (defaults in brackets):
#   HOST_ROOT [/host]  BUNDLE_DIR [/danm/bin]  CNI_CONF_TEMPLATE [/danm/00-danm.conf]
#   SA_DIR [/var/run/secrets/kubernetes.io/serviceaccount]
#   DANM_API_SERVER [https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT]: the API server
#     address as seen from the node; set it when the Service IP needs kube-proxy, which may not
#     be running yet when the first Pods are networked.
#   CNI_BIN_DIR [/opt/cni/bin]  CNI_NET_DIR [/etc/cni/net.d]  (paths on the node)
#   OVERWRITE_CNI_CONF [true]: false keeps an existing 00-danm.conf (admin-managed settings).
#   REFRESH_SECONDS [60]  ONCE [false]: true installs once and exits (for tests and init use).
set -eu

HOST_ROOT=${HOST_ROOT:-/host}
BUNDLE_DIR=${BUNDLE_DIR:-/danm/bin}
CNI_CONF_TEMPLATE=${CNI_CONF_TEMPLATE:-/danm/00-danm.conf}
SA_DIR=${SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_NET_DIR=${CNI_NET_DIR:-/etc/cni/net.d}
CRED_DIR=/etc/kubernetes/danm
OVERWRITE_CNI_CONF=${OVERWRITE_CNI_CONF:-true}
REFRESH_SECONDS=${REFRESH_SECONDS:-60}
ONCE=${ONCE:-false}

log() { echo "danm-cni-installer: $*" >&2; }
die() { log "error: $*"; exit 1; }

api_server() {
    if [ -n "${DANM_API_SERVER:-}" ]; then
        echo "$DANM_API_SERVER"
    elif [ -n "${KUBERNETES_SERVICE_HOST:-}" ]; then
        host=$KUBERNETES_SERVICE_HOST
        case $host in *:*) host="[$host]" ;; esac  # NB: an IPv6 Service IP needs brackets
        echo "https://$host:${KUBERNETES_SERVICE_PORT:-443}"
    else
        die "no API server address: set DANM_API_SERVER (or run in a Pod)"
    fi
}

# Copy $1 to $2 through a temporary file in the same directory, so the runtime never execs or
# reads a half-written file. $3 is the mode.
put() {
    tmp="$2.danm-install.$$"
    cp "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}

# Like put, for content on stdin.
put_text() {
    tmp="$1.danm-install.$$"
    cat > "$tmp"
    chmod "$2" "$tmp"
    mv -f "$tmp" "$1"
}

install_binaries() {
    mkdir -p "$HOST_ROOT$CNI_BIN_DIR"
    for binary in danm fakeipam; do
        [ -f "$BUNDLE_DIR/$binary" ] || die "$BUNDLE_DIR/$binary is missing from the image"
        if ! cmp -s "$BUNDLE_DIR/$binary" "$HOST_ROOT$CNI_BIN_DIR/$binary" 2>/dev/null; then
            put "$BUNDLE_DIR/$binary" "$HOST_ROOT$CNI_BIN_DIR/$binary" 0755
            log "installed $CNI_BIN_DIR/$binary"
        fi
    done
}

refresh_credentials() {
    for file in token ca.crt; do
        [ -s "$SA_DIR/$file" ] || { log "no service-account $file in $SA_DIR"; return 1; }
    done
    mkdir -p "$HOST_ROOT$CRED_DIR"
    chmod 0700 "$HOST_ROOT$CRED_DIR"
    for file in token ca.crt; do
        if ! cmp -s "$SA_DIR/$file" "$HOST_ROOT$CRED_DIR/$file" 2>/dev/null; then
            put "$SA_DIR/$file" "$HOST_ROOT$CRED_DIR/$file" 0600
            log "refreshed $CRED_DIR/$file"
        fi
    done
}

write_kubeconfig() {
    put_text "$HOST_ROOT$CRED_DIR/danm-kubeconfig.yaml" 0600 <<EOF
# Written by the danm-cni-installer DaemonSet; rewritten when it restarts.
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: $SERVER
    certificate-authority: $CRED_DIR/ca.crt
users:
- name: danm-cni
  user:
    tokenFile: $CRED_DIR/token
contexts:
- name: danm-cni@kubernetes
  context:
    cluster: kubernetes
    user: danm-cni
current-context: danm-cni@kubernetes
EOF
}

install_cni_conf() {
    target="$HOST_ROOT$CNI_NET_DIR/00-danm.conf"
    mkdir -p "$HOST_ROOT$CNI_NET_DIR"
    if [ -e "$target" ] && [ "$OVERWRITE_CNI_CONF" != "true" ]; then
        log "keeping the existing $CNI_NET_DIR/00-danm.conf (OVERWRITE_CNI_CONF=$OVERWRITE_CNI_CONF)"
        return
    fi
    [ -f "$CNI_CONF_TEMPLATE" ] || die "$CNI_CONF_TEMPLATE is missing from the image"
    # NB: only the kubeconfig path is ours to set; every other key stays as in the template.
    sed "s#\"kubeconfig\": *\"[^\"]*\"#\"kubeconfig\": \"$CRED_DIR/danm-kubeconfig.yaml\"#" \
        "$CNI_CONF_TEMPLATE" | put_text "$target" 0644
    log "installed $CNI_NET_DIR/00-danm.conf"
}

[ -d "$HOST_ROOT" ] || die "HOST_ROOT $HOST_ROOT does not exist (mount the node's / there)"
# NB: a failing command substitution only ends its subshell; check before writing anything.
SERVER=$(api_server) || exit 1
install_binaries
refresh_credentials || die "cannot install the API credentials"
write_kubeconfig
install_cni_conf
log "DANM CNI installed"

[ "$ONCE" = "true" ] && exit 0
trap 'log "stopping; the installed files stay"; exit 0' TERM INT
while :; do
    # NB: sleep in the background and wait, so that TERM is handled at once, not after a minute.
    sleep "$REFRESH_SECONDS" &
    wait $! || true
    refresh_credentials || log "token refresh failed; retrying in ${REFRESH_SECONDS}s"
done
