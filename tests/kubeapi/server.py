"""The HTTP face of the stand-in: routing, authentication, discovery, tables and watches.

All semantics live in :mod:`tests.kubeapi.registry`; this module only translates between
kube-apiserver's REST conventions and registry calls. Requests are always answered in JSON
(kubectl asks for protobuf first and accepts JSON), discovery is answered in the plain
(non-aggregated) form so kubectl 1.32 falls back to it. ``/openapi/v2`` is 404 and
``/openapi/v3`` only advertises that PATCH takes ``fieldValidation``, which is enough for
kubectl to leave validation to the server (``Strict`` rejects unknown fields of custom
resources; built-in kinds have no schema here, so their unknown fields pass).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.kubeapi import errors
from tests.kubeapi.credentials import Credentials
from tests.kubeapi.errors import ApiError
from tests.kubeapi.protobuf import ProtobufError, decode_object
from tests.kubeapi.registry import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    Registry,
    User,
)
from tests.kubeapi.resources import ALL_VERBS, ResourceType
from tests.kubeapi.selectors import fields_match, labels_match
from tests.kubeapi.store import Store, TooOldResourceVersion, WatchEvent, save_atomically

Obj = dict[str, Any]
UNAUTHENTICATED_PATHS = ("/healthz", "/livez", "/readyz")
DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass
class ServerConfig:
    credentials: Credentials
    persist_path: Path | None = None
    event_history: int = 1000
    bookmark_interval: float = 1.0


@dataclass(frozen=True)
class Target:
    """A parsed resource URL."""

    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str
    watch: bool


REGISTRY_KEY = web.AppKey("registry", Registry)
CONFIG_KEY = web.AppKey("config", ServerConfig)
STOPPING_KEY = web.AppKey("stopping", asyncio.Event)


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, as kubectl shows ages."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 730 else f"{days // 365}y"


def _age(timestamp: Any) -> str:
    if not isinstance(timestamp, str):
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "<unknown>"
    then = then.replace(tzinfo=datetime.UTC)
    return human_duration((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def json_path_value(obj: Any, path: str) -> Any:
    """The simple ``.a.b[0].c`` JSONPaths that printer columns use."""
    node = obj
    for part in path.strip().lstrip(".").replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]"):
            index = part[1:-1]
            node = (
                node[int(index)]
                if isinstance(node, list) and index.isdigit() and int(index) < len(node)
                else None
            )
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def table_columns(rt: ResourceType) -> list[Obj]:
    name = {
        "name": "Name",
        "type": "string",
        "format": "name",
        "priority": 0,
        "description": "Name must be unique within a namespace.",
    }
    age = {
        "name": "Age",
        "type": "date",
        "format": "",
        "priority": 0,
        "description": "CreationTimestamp is a timestamp representing the server time when "
        "this object was created.",
    }
    if not rt.printer_columns:
        return [name, age]
    custom = [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in rt.printer_columns
    ]
    return [name, *custom]


def table_row(rt: ResourceType, obj: Obj, include_object: str) -> Obj:
    cells: list[Any] = [obj["metadata"]["name"]]
    if not rt.printer_columns:
        cells.append(_age(obj["metadata"].get("creationTimestamp")))
    for column in rt.printer_columns:
        value = json_path_value(obj, column.get("jsonPath", ""))
        if column.get("type") == "date":
            value = _age(value)
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        cells.append(value)
    row: Obj = {"cells": cells}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    return row


def make_table(rt: ResourceType, objects: list[Obj], list_meta: Obj, include_object: str) -> Obj:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": table_columns(rt),
        "rows": [table_row(rt, o, include_object) for o in objects],
    }


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "").replace(" ", "")


def status_response(error: ApiError) -> web.Response:
    return web.json_response(error.status(), status=error.code)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _dry_run(request: web.Request, options: Obj | None = None) -> bool:
    values = request.query.getall("dryRun", [])
    if options and options.get("dryRun"):
        values = [*values, *options["dryRun"]]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'Invalid dry run value "{value}": supported values: "All"')
    return bool(values)


def _field_validation(request: web.Request) -> str:
    value = request.query.get("fieldValidation", "")
    if value not in ("", "Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {value}. Expected one of Ignore, Warn, Strict"
        )
    return value


# -- discovery -----------------------------------------------------------------------------
def _version_priority(version: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0)  # NB: non-Kubernetes-style versions sort last.
    stability = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stability, -int(match.group(1)), -int(match.group(3) or 0))


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _api_resource(rt: ResourceType) -> list[Obj]:
    main: Obj = {
        "name": rt.plural,
        "singularName": rt.singular_name,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(ALL_VERBS),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    result = [main]
    if rt.status_subresource:
        result.append(
            {
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return result


def _group_entry(group: str, versions: list[str]) -> Obj:
    ordered = sorted(versions, key=_version_priority)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


# -- the application -----------------------------------------------------------------------
class KubeApiHandlers:
    def __init__(self, registry: Registry, config: ServerConfig, stopping: asyncio.Event) -> None:
        self.registry = registry
        self.config = config
        self.stopping = stopping

    def authenticate(self, request: web.Request) -> User:
        # NB: as kube-apiserver's bearer-token authenticator: the scheme is case-insensitive
        # (the official Python client's in-cluster config sends "bearer <token>").
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.split(" ")[0] == self.config.credentials.token:
            return User("admin", ("system:masters", "system:authenticated"))
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        if peer:
            subject = [item for rdn in peer.get("subject", ()) for item in rdn]
            names = [v for k, v in subject if k == "commonName"]
            groups = tuple(v for k, v in subject if k == "organizationName")
            if names:
                return User(names[0], (*groups, "system:authenticated"))
        raise errors.unauthorized()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path in UNAUTHENTICATED_PATHS:
                return web.Response(text="ok")
            user = self.authenticate(request)
            return await self.route(request, user)
        except ApiError as error:
            return status_response(error)

    async def route(self, request: web.Request, user: User) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response(
                {
                    "major": "1",
                    "minor": "32",
                    "gitVersion": "v1.32.0-kubeapi",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2024-12-11T00:00:00Z",
                    "goVersion": "go1.23.3",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if parts == ["api"]:
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if parts[:2] == ["openapi", "v3"]:
            return web.json_response(self.openapi_v3(parts[2:]))
        if parts == ["apis"]:
            groups = self.registry.catalog.group_versions()
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [_group_entry(g, v) for g, v in groups.items()],
                }
            )
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            versions = self.registry.catalog.group_versions().get(parts[1])
            if versions is None:
                raise errors.path_not_found()
            if len(parts) == 2:
                return web.json_response(
                    {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(parts[1], versions)}
                )
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            resources = self.registry.catalog.in_group_version(group, version)
            if not resources:
                raise errors.path_not_found()
            return web.json_response(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [entry for rt in resources for entry in _api_resource(rt)],
                }
            )
        target = self.parse_target(group, version, rest)
        return await self.serve_resource(request, target, user)

    def openapi_v3(self, gv_parts: list[str]) -> Obj:
        """Just enough OpenAPI v3 for kubectl to see that PATCH takes ``fieldValidation``.

        kubectl 1.32 validates client-side from OpenAPI unless the server advertises
        server-side field validation; each group-version document lists, per resource, a
        PATCH operation with its GVK and that query parameter (and no schemas, so kubectl
        falls back to its built-in types for strategic merge patches).
        """
        catalog = self.registry.catalog
        if not gv_parts:
            gvs = {(r.group, r.version) for r in catalog.all()}
            return {
                "paths": {
                    _gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}"}
                    for g, v in sorted(gvs)
                }
            }
        if gv_parts[0] == "api" and len(gv_parts) == 2:
            group, version = "", gv_parts[1]
        elif gv_parts[0] == "apis" and len(gv_parts) == 3:
            group, version = gv_parts[1], gv_parts[2]
        else:
            raise errors.path_not_found()
        resources = catalog.in_group_version(group, version)
        if not resources:
            raise errors.path_not_found()
        parameter = {
            "name": "fieldValidation",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Ignore, Warn or Strict handling of unknown fields.",
        }
        paths = {}
        for rt in resources:
            scope = "/namespaces/{namespace}" if rt.namespaced else ""
            gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
            paths[f"/{_gv_path(group, version)}{scope}/{rt.plural}/{{name}}"] = {
                "patch": {
                    "operationId": f"patch{rt.kind}",
                    "parameters": [parameter],
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}},
                }
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }

    def parse_target(self, group: str, version: str, rest: list[str]) -> Target:
        catalog = self.registry.catalog
        watch = rest[0] == "watch"
        if watch:
            rest = rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            scoped = catalog.lookup(group, version, rest[2])
            if scoped is not None and scoped.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.path_not_found()
        rt = catalog.lookup(group, version, rest[0])
        if rt is None:
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and (subresource != "status" or not rt.status_subresource):
            raise errors.path_not_found()
        if namespace is not None and not rt.namespaced:
            raise errors.path_not_found()
        return Target(rt, namespace, name, subresource, watch)

    async def serve_resource(
        self, request: web.Request, target: Target, user: User
    ) -> web.StreamResponse:
        rt, method = target.rt, request.method
        ns = target.namespace if target.namespace is not None else ""
        if rt.namespaced and target.namespace is None and target.name:
            raise errors.path_not_found()
        if target.watch or (
            method == "GET" and not target.name and _truthy(request.query.get("watch"))
        ):
            if method != "GET":
                raise errors.method_not_allowed_generic()
            return await self.watch(request, target)
        if method == "GET":
            if target.name:
                obj = self.registry.get(rt, ns, target.name)
                if wants_table(request):
                    meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                    return web.json_response(
                        make_table(rt, [obj], meta, request.query.get("includeObject", "Metadata"))
                    )
                return web.json_response(obj)
            return self.list_response(request, target)
        if method == "POST":
            if target.name or (rt.namespaced and target.namespace is None):
                raise errors.method_not_allowed_generic()
            body = await self.read_body(request)
            created = await self.registry.create(
                rt,
                ns,
                body,
                dry_run=_dry_run(request),
                user=user,
                field_validation=_field_validation(request),
            )
            return web.json_response(created, status=201)
        if method == "PUT" and target.name:
            body = await self.read_body(request)
            updated, created_now = await self.registry.update(
                rt,
                ns,
                target.name,
                body,
                subresource=target.subresource,
                dry_run=_dry_run(request),
                user=user,
                field_validation=_field_validation(request),
            )
            return web.json_response(updated, status=201 if created_now else 200)
        if method == "PATCH" and target.name:
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
                accepted = [JSON_PATCH, MERGE_PATCH]
                if not rt.custom:
                    accepted.append(STRATEGIC_PATCH)
                # NB: server-side apply (apply-patch+yaml) is deliberately not offered.
                raise errors.unsupported_media_type(accepted)
            patch = self.decode_json(await request.read())
            patched = await self.registry.patch(
                rt,
                ns,
                target.name,
                content_type,
                patch,
                subresource=target.subresource,
                dry_run=_dry_run(request),
                user=user,
                field_validation=_field_validation(request),
            )
            return web.json_response(patched)
        if method == "DELETE" and not target.subresource:
            raw = await request.read()
            options = self.decode_json(raw) if raw.strip() else {}
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            if "propagationPolicy" in request.query:
                options["propagationPolicy"] = request.query["propagationPolicy"]
            dry_run = _dry_run(request, options)
            if not target.name:
                deleted = await self.registry.delete_collection(
                    rt,
                    target.namespace,
                    request.query.get("labelSelector", ""),
                    request.query.get("fieldSelector", ""),
                    options,
                    dry_run=dry_run,
                    user=user,
                )
                return web.json_response(
                    {
                        "kind": f"{rt.kind}List",
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(self.registry.store.rv)},
                        "items": deleted,
                    }
                )
            obj, deleted_now = await self.registry.delete(
                rt, ns, target.name, options, dry_run=dry_run, user=user
            )
            if deleted_now and not rt.returns_deleted_object:
                details: Obj = {"name": target.name}
                if rt.group:
                    details["group"] = rt.group
                details.update({"kind": rt.plural, "uid": obj["metadata"]["uid"]})
                return web.json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    }
                )
            return web.json_response(obj)
        raise errors.method_not_allowed_generic()

    @staticmethod
    def decode_json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as e:
            raise errors.bad_request(f"error decoding patch: {e}") from e

    async def read_body(self, request: web.Request) -> Any:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
        raw = await request.read()
        if content_type in ("application/json", ""):
            try:
                return json.loads(raw)
            except ValueError as e:
                raise errors.bad_request(f"error decoding request body: {e}") from e
        if content_type in ("application/yaml", "application/x-yaml"):
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise errors.bad_request(f"error decoding YAML body: {e}") from e
        if content_type == "application/vnd.kubernetes.protobuf":
            try:
                return decode_object(raw)
            except ProtobufError as e:
                raise errors.unsupported_media_type(
                    ["application/json", "application/yaml"], detail=str(e)
                ) from e
        raise errors.unsupported_media_type(["application/json", "application/yaml"])

    # -- list ------------------------------------------------------------------------------
    def list_response(self, request: web.Request, target: Target) -> web.Response:
        rt, query = target.rt, request.query
        label_selector = query.get("labelSelector", "")
        field_selector = query.get("fieldSelector", "")
        items = self.registry.list_objects(rt, target.namespace, label_selector, field_selector)
        list_rv = self.registry.store.rv
        token = query.get("continue", "")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                list_rv, start = int(decoded["rv"]), tuple(decoded["start"])
            except (ValueError, KeyError, TypeError, binascii.Error) as e:
                raise errors.bad_request(f"continue key is not valid: {e}") from e
            items = [o for o in items if _sort_key(o) > start]
        meta: Obj = {"resourceVersion": str(list_rv)}
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            remaining = len(items) - limit
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": list(_sort_key(items[-1]))}).encode()
            ).decode()
            if not label_selector and not field_selector:
                meta["remainingItemCount"] = remaining
        if wants_table(request):
            return web.json_response(
                make_table(rt, items, meta, query.get("includeObject", "Metadata"))
            )
        if not rt.custom:
            # NB: typed lists of built-in kinds carry no per-item apiVersion/kind.
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        return web.json_response(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    # -- watch -----------------------------------------------------------------------------
    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, query, store = target.rt, request.query, self.registry.store
        field_selector = query.get("fieldSelector", "")
        if target.name:
            field_selector = ",".join(
                filter(None, [field_selector, f"metadata.name={target.name}"])
            )
        labels_req, fields_req = self.registry.selectors(
            rt, query.get("labelSelector", ""), field_selector
        )
        as_table = wants_table(request)
        include_object = query.get("includeObject", "Metadata")
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        rv_param = query.get("resourceVersion", "")

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            meta = obj["metadata"]
            if target.namespace is not None and meta.get("namespace") != target.namespace:
                return False
            return labels_match(labels_req, meta.get("labels")) and fields_match(fields_req, obj)

        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()

        def listener(event: WatchEvent) -> None:
            if event.key == rt.storage_key:
                queue.put_nowait(event)

        unsubscribe = store.subscribe(listener)
        response: web.StreamResponse | None = None
        try:
            backlog: list[tuple[str, Obj]] = []
            if rv_param in ("", "0"):
                objects = self.registry.list_objects(rt, target.namespace)
                backlog = [("ADDED", o) for o in objects if matches(o)]
            else:
                try:
                    since = int(rv_param)
                except ValueError as e:
                    raise errors.bad_request(f"invalid resource version: {rv_param}") from e
                try:
                    for event in store.events_after(since):
                        if event.key == rt.storage_key:
                            backlog.extend(self.translate(rt, event, matches))
                except TooOldResourceVersion as e:
                    response = web.StreamResponse(headers={"Content-Type": "application/json"})
                    await response.prepare(request)
                    error = errors.expired(str(e))
                    await self.send(response, "ERROR", error.status())
                    return response
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for kind, obj in backlog:
                await self.send(response, kind, self.render(rt, obj, as_table, include_object))
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.config.bookmark_interval
            stop_waiter = asyncio.ensure_future(self.stopping.wait())
            getter: asyncio.Future[WatchEvent] | None = None
            try:
                while not self.stopping.is_set():
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    wake = min(deadline, next_bookmark) if bookmarks else deadline
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, stop_waiter},
                        timeout=wake - now,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if getter not in done:
                        getter.cancel()
                        if bookmarks and time.monotonic() >= next_bookmark and queue.empty():
                            await self.send(
                                response,
                                "BOOKMARK",
                                {
                                    "kind": rt.kind,
                                    "apiVersion": rt.api_version,
                                    "metadata": {"resourceVersion": str(store.rv)},
                                },
                            )
                            next_bookmark = time.monotonic() + self.config.bookmark_interval
                        continue
                    for kind, obj in self.translate(rt, getter.result(), matches):
                        await self.send(
                            response, kind, self.render(rt, obj, as_table, include_object)
                        )
            finally:
                # NB: a client that hangs up cancels this handler inside asyncio.wait; the
                # pending queue read must go with it, or it is reported destroyed-while-pending.
                stop_waiter.cancel()
                if getter is not None and not getter.done():
                    getter.cancel()
            return response
        except ConnectionResetError:
            # NB: the client hung up while an event was being written: the watch is simply over
            # (a real apiserver does not report that as a handler error either).
            if response is None:
                raise
            return response
        finally:
            unsubscribe()

    def translate(
        self, rt: ResourceType, event: WatchEvent, matches: Callable[[Obj | None], bool]
    ) -> list[tuple[str, Obj]]:
        """Selector transitions: entering the selection is ADDED, leaving it DELETED."""
        obj = self.registry.serve(rt, json.loads(json.dumps(event.obj)))
        if event.type == "DELETED":
            return [("DELETED", obj)] if matches(event.obj) else []
        was, now = matches(event.old), matches(event.obj)
        if event.type == "ADDED" or (now and not was):
            return [("ADDED", obj)] if now else []
        if was and not now:
            return [("DELETED", obj)]
        return [("MODIFIED", obj)] if now else []

    @staticmethod
    def render(rt: ResourceType, obj: Obj, as_table: bool, include_object: str) -> Obj:
        if not as_table:
            return obj
        return make_table(
            rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, include_object
        )

    @staticmethod
    async def send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")


def _sort_key(obj: Obj) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def build_app(config: ServerConfig) -> web.Application:
    store = Store(history=config.event_history)
    if config.persist_path is not None and config.persist_path.exists():
        store.load(json.loads(config.persist_path.read_text()))
    persist_path = config.persist_path

    def persist() -> None:
        if persist_path is not None:
            save_atomically(store, persist_path)

    registry = Registry(store, on_commit=persist)
    persist()
    stopping = asyncio.Event()
    handlers = KubeApiHandlers(registry, config, stopping)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[REGISTRY_KEY] = registry
    app[CONFIG_KEY] = config
    app[STOPPING_KEY] = stopping
    app.router.add_route("*", "/{tail:.*}", handlers.dispatch)

    async def on_shutdown(_: web.Application) -> None:
        stopping.set()

    async def on_cleanup(_: web.Application) -> None:
        await registry.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


@dataclass
class RunningServer:
    runner: web.AppRunner
    url: str
    port: int

    async def stop(self) -> None:
        server = self.runner.server
        handlers = list(server.connections) if server is not None else []
        transports = [h.transport for h in handlers if h.transport is not None]
        await self.runner.cleanup()
        # NB: a graceful TLS close waits for the peer's close_notify on later loop iterations;
        # a stopping server must not leave that pending, so cut whatever is still open.
        for transport in transports:
            transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)


async def start_server(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    app = build_app(config)
    # NB: a short shutdown grace: open watch streams end as soon as shutdown starts.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=config.credentials.server_ssl_context())
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    actual_port = int(sockets[0].getsockname()[1]) if sockets else port
    return RunningServer(runner, f"https://{host}:{actual_port}", actual_port)
