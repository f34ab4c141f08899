"""``KubeApi`` on the standard library alone, for processes whose start-up time is the product.

Why it exists: the ``danm`` CNI binary is exec'ed by kubelet for every Pod and makes a handful
of REST calls. ``import kubernetes`` (plus urllib3) costs a few hundred milliseconds before the
first request, more than the whole call should take. ``LeanKubeApi`` speaks the same raw REST as
``common.io.kube.KubernetesApi`` (both inherit their verbs from ``common.io.kube.RestVerbs``) over
``http.client`` + ``ssl`` + ``json``, returns the same plain dicts and raises the same error tree
(``common.io.kube``'s docstring), so ``update_with_retry`` and every caller work with either;
``tests/contract/test_kube_adapter.py`` runs against both.

Configuration: :func:`load_kubeconfig` reads the current (or a named) context of a kubeconfig:
server, CA (``certificate-authority-data`` or ``certificate-authority``), client certificate and
key (``-data`` or file), bearer ``token`` or ``tokenFile``, basic auth, ``tls-server-name`` and
``insecure-skip-tls-verify``. :func:`load_incluster` reads the service-account token and CA and
``KUBERNETES_SERVICE_HOST``/``_PORT``. Credential plugins (``exec``, ``auth-provider``) are not
supported and are refused with a clear ``KubeError``: use ``KubernetesApi`` for those.

Connections: HTTP/1.1 keep-alive through a small pool, so a CNI call reuses one TLS connection
for its sequential requests while parallel connection threads each borrow their own. A pooled
connection the server has closed is noticed before reuse; an idempotent request that still meets
a connection dropped mid-way is sent once more on a fresh connection.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import select
import socket
import ssl
import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.io.kube import (
    JsonObject,
    KubeApi,
    KubeError,
    KubeUnavailable,
    RestVerbs,
    WatchEvent,
    config_load_error,
    error_from_status,
    parse_object,
    parse_watch_line,
    watch_path,
)
from common.io.watch import EventStream, WatchStream
from common.model.resources import Resource

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
USER_AGENT = "danm-py/lean"
#: Idle connections kept per adapter; more than the parallel ADD threads of a typical Pod.
POOL_SIZE = 8
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: Errors meaning "the connection went away", as opposed to a slow or refusing server.
_DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


# --------------------------------------------------------------------------------------------
# Configuration (pure data, plus the file reads that fill it)


@dataclass(frozen=True)
class KubeConnection:
    """Everything needed to reach and authenticate to one API server.

    PEM material is kept as bytes, whether it came inline (``*-data``) or from a file, so the
    adapter never depends on those files after loading.
    """

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, if any credential needs one."""
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KubeError(f"cannot read {what} {path}: {error.strerror or error}") from error


# --------------------------------------------------------------------------------------------
# The plain YAML of ordinary kubeconfig files, without PyYAML

#: Plain scalars PyYAML (YAML 1.1) resolves to booleans or null rather than strings.
_YAML_BOOLEANS: dict[str, bool] = {
    word: value
    for value, words in ((True, ("yes", "true", "on")), (False, ("no", "false", "off")))
    for base in words
    for word in (base, base.capitalize(), base.upper())
}
_YAML_NULLS = frozenset({"null", "Null", "NULL"})
#: A first character that makes a plain scalar anything but an ordinary string (indicators,
#: numbers, timestamps, ``.inf``, ``~``, ``<<``, ``=``).
_YAML_SPECIAL_START = frozenset("-?:,[]{}#&*!|>'\"%@`+.~<=0123456789")
_YAML_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")


class _NotSimple(Exception):
    """The document leaves the subset :func:`simple_yaml` reads exactly."""


def _yaml_scalar(text: str) -> Any:
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    quote = text[0]
    if quote in "\"'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != quote:
            raise _NotSimple
        if quote == '"' and ('"' in inner or "\\" in inner):
            raise _NotSimple
        if quote == "'":
            if "'" in inner.replace("''", ""):
                raise _NotSimple
            inner = inner.replace("''", "'")
        if not inner.isprintable():
            raise _NotSimple
        return inner
    if text[0] in _YAML_SPECIAL_START or ": " in text or " #" in text or text.endswith(":"):
        raise _NotSimple
    if not text.isprintable():
        raise _NotSimple
    if text in _YAML_BOOLEANS:
        return _YAML_BOOLEANS[text]
    return None if text in _YAML_NULLS else text


def _yaml_key(text: str) -> tuple[str, str] | None:
    """``(key, rest)`` when ``text`` is a ``key:`` or ``key: value`` entry, else None."""
    colon = text.find(":")
    if colon <= 0 or (colon + 1 < len(text) and text[colon + 1] != " "):
        return None
    key = text[:colon]
    if not key[0].isalpha() or not set(key) <= _YAML_KEY_CHARS:
        return None
    if key in _YAML_BOOLEANS or key in _YAML_NULLS:
        raise _NotSimple
    return key, text[colon + 1 :].strip(" ")


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _yaml_node(lines: list[tuple[int, str]], at: int) -> tuple[Any, int]:
    indent = lines[at][0]
    return (_yaml_sequence if _is_item(lines[at][1]) else _yaml_mapping)(lines, at, indent)


def _yaml_value(
    lines: list[tuple[int, str]], at: int, indent: int, rest: str, *, sequence_may_align: bool
) -> tuple[Any, int]:
    """The value of an entry (mapping key or sequence item) whose line is ``at``.

    NB: only a mapping key may have its block sequence at its own indentation ("key:\n- a").
    """
    nxt = lines[at + 1] if at + 1 < len(lines) else None
    if rest:
        if nxt is not None and nxt[0] > indent:
            raise _NotSimple  # NB: a multi-line scalar
        return _yaml_scalar(rest), at + 1
    if nxt is not None and (
        nxt[0] > indent or (sequence_may_align and nxt[0] == indent and _is_item(nxt[1]))
    ):
        return _yaml_node(lines, at + 1)
    return None, at + 1


def _yaml_mapping(lines: list[tuple[int, str]], at: int, indent: int) -> tuple[Any, int]:
    mapping: dict[str, Any] = {}
    while at < len(lines) and lines[at][0] == indent and not _is_item(lines[at][1]):
        entry = _yaml_key(lines[at][1])
        if entry is None or entry[0] in mapping:
            raise _NotSimple
        key, rest = entry
        mapping[key], at = _yaml_value(lines, at, indent, rest, sequence_may_align=True)
    return mapping, at


def _yaml_sequence(lines: list[tuple[int, str]], at: int, indent: int) -> tuple[Any, int]:
    items: list[Any] = []
    while at < len(lines) and lines[at][0] == indent and _is_item(lines[at][1]):
        content = lines[at][1][1:].lstrip(" ")
        if content and _yaml_key(content) is not None:
            # NB: "- key: value" opens a mapping whose keys align with "key".
            lines[at] = (indent + len(lines[at][1]) - len(content), content)
            item, at = _yaml_mapping(lines, at, lines[at][0])
        elif content.startswith("-"):
            raise _NotSimple
        else:
            item, at = _yaml_value(lines, at, indent, content, sequence_may_align=False)
        items.append(item)
    return items, at


def simple_yaml(text: str) -> dict[str, Any] | None:
    """A block-style YAML mapping read exactly as PyYAML's safe loader would, or None.

    Only the subset ``kubectl``/``kubeadm`` write: block mappings and sequences, full-line
    comments, plain scalars that can only be strings (or the YAML 1.1 booleans and null),
    simple quoted scalars and empty ``{}``/``[]``. Anything else (flow collections, anchors,
    tags, numbers, multi-line or escaped scalars, tabs, several documents) returns None, and the
    caller hands the text to PyYAML: a None here never means "empty".
    """
    lines: list[tuple[int, str]] = []
    for raw in text.split("\n"):
        line = raw.rstrip(" ")
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        if "\t" in line or "\r" in line or line.startswith(("---", "...", "%", "\ufeff")):
            return None
        lines.append((len(line) - len(content), content))
    try:
        document, end = _yaml_node(lines, 0) if lines else (None, 0)
    except _NotSimple:
        return None
    return document if end == len(lines) and isinstance(document, dict) else None


def _load_document(path: Path) -> Any:
    text = _read_bytes(path, "kubeconfig").decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        pass
    # NB: yaml costs ~15 ms to import (per CNI call); the plain block style kubeadm and kubectl
    # write, and JSON, never need it.
    simple = simple_yaml(text)
    if simple is not None:
        return simple
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # NB: a safe loader, C-accelerated when built
    except yaml.YAMLError as error:
        raise KubeError(f"kubeconfig {path} is not valid YAML: {error}") from error


def _named(document: Mapping[str, Any], section: str, name: str, path: Path) -> Mapping[str, Any]:
    entries = document.get(f"{section}s") or []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            body = entry.get(section) or {}
            if not isinstance(body, Mapping):
                raise KubeError(f"kubeconfig {path}: {section} {name!r} is not a mapping")
            return body
    raise KubeError(f"kubeconfig {path}: no {section} named {name!r}")


def _pem(section: Mapping[str, Any], key: str, base: Path, what: str, path: Path) -> bytes | None:
    """``<key>-data`` (base64) wins over ``<key>`` (a file, relative to the kubeconfig)."""
    inline = section.get(f"{key}-data")
    if inline:
        try:
            return base64.b64decode(str(inline), validate=True)
        except ValueError as error:
            raise KubeError(f"kubeconfig {path}: {key}-data is not base64: {error}") from error
    file_name = section.get(key)
    if file_name:
        return _read_bytes(base / os.path.expanduser(str(file_name)), what)
    return None


def parse_kubeconfig(document: Any, *, path: Path, context: str | None = None) -> KubeConnection:
    """The connection of ``context`` (default: ``current-context``) in a parsed kubeconfig.

    ``path`` names the file in messages and anchors relative certificate and token paths.
    """
    if not isinstance(document, Mapping):
        raise KubeError(f"kubeconfig {path} is not a mapping")
    context_name = context or document.get("current-context")
    if not context_name:
        raise KubeError(f"kubeconfig {path} has no current-context and none was given")
    chosen = _named(document, "context", str(context_name), path)
    cluster = _named(document, "cluster", str(chosen.get("cluster") or ""), path)
    user_name = chosen.get("user")
    user = _named(document, "user", str(user_name), path) if user_name else {}
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise KubeError(
                f"kubeconfig {path}: user {user_name!r} uses an {plugin} credential plugin, "
                "which the lean client does not run; give a token or client certificate"
            )
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeError(f"kubeconfig {path}: cluster {chosen.get('cluster')!r} has no server")
    base = path.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token_file = base / os.path.expanduser(str(user["tokenFile"]))
        token = _read_bytes(token_file, "token file").decode().strip()
    username, password = user.get("username"), user.get("password")
    return KubeConnection(
        server=server,
        ca_pem=_pem(cluster, "certificate-authority", base, "CA file", path),
        client_cert_pem=_pem(user, "client-certificate", base, "client certificate", path),
        client_key_pem=_pem(user, "client-key", base, "client key", path),
        token=str(token) if token else None,
        username=None if username is None else str(username),
        password=None if password is None else str(password),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
    )


def load_kubeconfig(
    kubeconfig: str | PathLike[str], *, context: str | None = None
) -> KubeConnection:
    """Read and parse a kubeconfig file (see :func:`parse_kubeconfig`)."""
    path = Path(kubeconfig)
    return parse_kubeconfig(_load_document(path), path=path, context=context)


def load_incluster(
    environ: Mapping[str, str] | None = None, *, secrets_dir: Path = SERVICE_ACCOUNT_DIR
) -> KubeConnection:
    """The Pod's service-account connection, as ``client-go``'s ``InClusterConfig`` builds it."""
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset"
        )
    if ":" in host:  # NB: an IPv6 service address needs brackets in a URL
        host = f"[{host}]"
    token = _read_bytes(secrets_dir / "token", "service-account token").decode().strip()
    if not token:
        raise KubeError(f"the service-account token in {secrets_dir} is empty")
    return KubeConnection(
        server=f"https://{host}:{port}",
        ca_pem=_read_bytes(secrets_dir / "ca.crt", "service-account CA"),
        token=token,
    )


def ssl_context(connection: KubeConnection) -> ssl.SSLContext:
    """A client TLS context trusting the connection's CA and presenting its client certificate.

    ``ssl`` loads a certificate chain from files only, so the client certificate and key go
    through a private (0700) temporary directory that is removed as soon as they are loaded.
    """
    try:
        # NB: with a cluster CA only that CA is trusted (as client-go does); the system store,
        # ~25 ms to load, is read only for a server without one.
        if connection.insecure_skip_tls_verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH,
                cadata=connection.ca_pem.decode("ascii", "replace") if connection.ca_pem else None,
            )
        if connection.client_cert_pem:
            pems = (
                connection.client_cert_pem,
                connection.client_key_pem or connection.client_cert_pem,
            )
            try:
                _load_cert_chain_from_memory(context, *pems)
            except ssl.SSLError:
                raise  # NB: bad PEM (SSLError is an OSError); scratch files would not help
            except OSError:
                _load_cert_chain_from_scratch_files(context, *pems)
    except (ssl.SSLError, ValueError) as error:
        raise KubeError(f"cannot use the TLS material for {connection.server}: {error}") from error
    return context


# --------------------------------------------------------------------------------------------
# Transport


def _load_cert_chain_from_memory(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Give OpenSSL (which reads only files) in-memory PEM through anonymous memory files.

    NB: nothing touches the disk and no ``tempfile``/``shutil`` import is paid on every CNI call;
    raises OSError where ``memfd_create`` or ``/proc`` is unavailable (use the scratch files).
    """
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        raise OSError("memfd_create is not available")
    fds: list[int] = []
    try:
        for content in (cert_pem, key_pem):
            fd = memfd_create("kube-lean", os.MFD_CLOEXEC)
            fds.append(fd)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        context.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
    finally:
        for fd in fds:
            os.close(fd)


def _load_cert_chain_from_scratch_files(
    context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes
) -> None:
    """The portable way: the PEM in a private temporary directory, removed right after."""
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix="kube-lean-")
    try:
        cert_file = os.path.join(scratch, "client.crt")
        key_file = os.path.join(scratch, "client.key")
        for name, content in ((cert_file, cert_pem), (key_file, key_pem)):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
        context.load_cert_chain(cert_file, key_file)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Connection(http.client.HTTPSConnection):
    """``HTTPSConnection`` that can verify against a server name other than the host."""

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        timeout: float | None,
        context: ssl.SSLContext,
        sni: str,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls = context
        self._sni = sni

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._sni)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True if the server closed (or wrote unasked to) an idle pooled connection."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@contextlib.contextmanager
def _corked(sock: socket.socket | None) -> Iterator[None]:
    """Hold back partial segments while a request is written, then send it in one go.

    NB: ``http.client`` writes the headers and the body with two ``send`` calls. Any hop that
    still runs Nagle's algorithm (a proxy or port forwarder without ``TCP_NODELAY``) then holds
    the body until the server's delayed ACK, ~40 ms per write request; corking avoids that.
    """
    cork = getattr(socket, "TCP_CORK", None)
    if sock is None or cork is None:
        yield
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


class _Pool:
    """Idle keep-alive connections to one server; borrowing is thread-safe."""

    def __init__(self, factory: Any, size: int) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def borrow(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was used before (reused ones may have gone stale)."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._factory(), False
            if not _dropped(connection):
                return connection, True
            connection.close()

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


# --------------------------------------------------------------------------------------------
# The adapter


class LeanKubeApi(RestVerbs):
    """``KubeApi`` over ``http.client``: its transport and ``watch`` (the other verbs are
    :class:`RestVerbs`'); build it with :meth:`connect` or :meth:`from_connection`.

    Thread-safe: each request borrows a pooled connection for its duration.
    """

    def __init__(
        self,
        connection: KubeConnection,
        *,
        request_timeout_s: float = 30.0,
        pool_size: int = POOL_SIZE,
    ) -> None:
        url = urlsplit(connection.server)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise KubeError(f"API server URL {connection.server!r} is not http(s)://host[:port]")
        self.server = connection.server
        self.request_timeout_s = request_timeout_s
        self._base_path = url.path.rstrip("/")
        self._host = url.hostname
        self._port = url.port
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        authorization = connection.authorization()
        if authorization:
            self._headers["Authorization"] = authorization
        self._tls = ssl_context(connection) if url.scheme == "https" else None
        self._sni = connection.tls_server_name or url.hostname
        self._pool = _Pool(lambda: self._new_connection(self.request_timeout_s), pool_size)

    @classmethod
    def connect(
        cls,
        kubeconfig: str | PathLike[str] | None = None,
        *,
        context: str | None = None,
        request_timeout_s: float = 30.0,
    ) -> LeanKubeApi:
        """Load a kubeconfig file, or the in-cluster config when ``kubeconfig`` is None."""
        try:
            connection = (
                load_incluster()
                if kubeconfig is None
                else load_kubeconfig(kubeconfig, context=context)
            )
        except KubeError as error:
            raise config_load_error(kubeconfig, error) from error
        return cls.from_connection(connection, request_timeout_s=request_timeout_s)

    @classmethod
    def from_connection(
        cls, connection: KubeConnection, *, request_timeout_s: float = 30.0
    ) -> LeanKubeApi:
        return cls(connection, request_timeout_s=request_timeout_s)

    def close(self) -> None:
        """Close every idle pooled connection (a watch still streaming closes its own)."""
        self._pool.close()

    # ---- transport

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._tls is None:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return _Connection(
            self._host, self._port, timeout=timeout, context=self._tls, sni=self._sni
        )

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        payload: bytes | None,
        content_type: str,
    ) -> http.client.HTTPResponse:
        headers = dict(self._headers)
        if payload is not None:
            headers["Content-Type"] = content_type
        if connection.sock is None:
            connection.connect()
        with _corked(connection.sock):
            connection.request(method, self._base_path + path, body=payload, headers=headers)
        return connection.getresponse()

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        streaming_read_timeout: float | None = None,
        stream: bool = False,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request; return its connection and the unread response of a 2xx status."""
        payload = None if body is None else json.dumps(body).encode()
        if stream:
            connection, reused = self._new_connection(self.request_timeout_s), False
        else:
            connection, reused = self._pool.borrow()
        try:
            try:
                response = self._exchange(connection, method, path, payload, content_type)
            except _DROPPED:
                if not (reused and method in _IDEMPOTENT):
                    raise
                # NB: the server closed a kept-alive connection under us; say it once more.
                connection.close()
                connection = self._new_connection(self.request_timeout_s)
                response = self._exchange(connection, method, path, payload, content_type)
            if response.status >= 400:
                data = response.read()
                if stream:
                    connection.close()
                else:
                    self._finish(connection, response)
                raise error_from_status(response.status, data)
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise KubeUnavailable(f"{method} {path}: API server unreachable: {error}") from error
        if stream and connection.sock is not None:
            connection.sock.settimeout(streaming_read_timeout)
        return connection, response

    def _finish(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        if response.will_close:
            connection.close()
        else:
            self._pool.give_back(connection)

    def _request(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        connection, response = self._send(method, path, **kwargs)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise KubeUnavailable(f"{method} {path}: reading the answer failed: {error}") from error
        self._finish(connection, response)
        return parse_object(data)

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_s: int | None = None,
        allow_bookmarks: bool = False,
    ) -> WatchStream:
        """Yield ``(type, object)`` until the server ends the watch or the caller stops or cancels.

        The stream has a connection of its own (never pooled); an expired ``resource_version``
        raises ``Gone``.
        """
        path = watch_path(
            resource,
            namespace,
            resource_version=resource_version,
            label_selector=label_selector,
            field_selector=field_selector,
            timeout_s=timeout_s,
            allow_bookmarks=allow_bookmarks,
        )
        # NB: the read timeout must outlast the server-side one (see KubernetesApi.watch).
        read_timeout = None if timeout_s is None else timeout_s + self.request_timeout_s
        connection, response = self._send(
            "GET", path, stream=True, streaming_read_timeout=read_timeout
        )
        return EventStream(
            self._watch_events(response, path),
            interrupt=lambda: self._interrupt_connection(connection),
            release=lambda: self._release_connection(connection, response),
        )

    @staticmethod
    def _watch_events(
        response: http.client.HTTPResponse, path: str
    ) -> Generator[WatchEvent, None, None]:
        try:
            while line := response.readline():
                event = parse_watch_line(line)
                if event is not None:
                    yield event
        except (OSError, http.client.HTTPException) as error:
            raise KubeUnavailable(f"watch {path} broke off: {error}") from error

    @staticmethod
    def _interrupt_connection(connection: http.client.HTTPConnection) -> None:
        """Wake a thread blocked reading the watch; from any other thread."""
        # NB: shutdown, not close: only a shutdown wakes a recv blocked in another thread.
        if connection.sock is not None:
            connection.sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _release_connection(
        connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        with contextlib.suppress(OSError):
            if connection.sock is not None:
                connection.sock.shutdown(socket.SHUT_RDWR)
        response.close()
        connection.close()


_check: KubeApi = LeanKubeApi(KubeConnection(server="http://127.0.0.1:1"))
