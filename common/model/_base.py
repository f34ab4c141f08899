"""Loss-free mapping between Go-serialised JSON and frozen dataclasses.

The original's objects are written by several Go programs and by humans with kubectl, so the same
field can arrive absent, ``null``, empty or set, and newer DANM versions (or other tools) add keys
we do not model. A controller that reads an object and writes it back must not silently drop or
rewrite any of that, so every model keeps the exact mapping it was read from (``source``) and
``to_dict`` obeys three rules, level by level:

1. Keys the input had come back in the same order; a known key whose typed value is unchanged is
   written back verbatim (``null`` stays ``null``, ``"vlan": 0`` stays), a changed one is
   re-serialised from the typed value.
2. Unknown keys come back verbatim.
3. A known key the input did not have is added only when its typed value differs from the field's
   default. Objects we build ourselves (``source is None``) additionally always carry the keys the
   original Go types serialise without ``omitempty`` (``JsonField.always``).

Each model lists its JSON keys once, as a ``JSON_FIELDS`` table of (key, attribute, codec), and
inherits ``from_dict``/``to_dict`` from :class:`JsonModel`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from common.model.errors import ModelError

_JSON_SCALARS = (str, int, float, bool, type(None))


def copy_json(value: Any) -> Any:
    """A deep copy of decoded JSON: dicts, lists and scalars are copied by hand, several times
    faster than ``copy.deepcopy`` (models copy their source on every parse, on the hot paths of
    the webhook and the CNI); anything else falls back to ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if isinstance(value, _JSON_SCALARS):
        return value
    return copy.deepcopy(value)


def copy_json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """``copy_json`` of a JSON object, typed as one."""
    return {key: copy_json(item) for key, item in value.items()}


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Where:
    """The object being read and the JSON path inside it, for error messages."""

    object_ref: str
    path: str = ""

    def at(self, key: str | int) -> Where:
        if isinstance(key, int):
            return Where(self.object_ref, f"{self.path}[{key}]")
        if not key.replace("_", "").isalnum():
            # NB: map keys such as CIDRs or label names would make a dotted path ambiguous.
            return Where(self.object_ref, f"{self.path}[{json.dumps(key)}]")
        return Where(self.object_ref, f"{self.path}.{key}" if self.path else key)

    def entry(self, key: str) -> Where:
        """A map entry, always shown bracketed so it cannot be mistaken for a field."""
        return Where(self.object_ref, f"{self.path}[{json.dumps(key)}]")

    def error(self, reason: str) -> ModelError:
        return ModelError(self.object_ref, self.path, reason)


def describe(value: Any) -> str:
    """A short JSON-flavoured description of a value, e.g. ``string "abc"`` or ``list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        text = json.dumps(value)
        if len(text) > 60:
            text = text[:56] + '..."'
        return f"string {text}"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    """How one JSON value becomes a typed value and back. ``parse`` treats ``null`` as zero."""

    parse: Callable[[Any, Where], T]
    dump: Callable[[T], Any]


def _parse_str(value: Any, where: Where) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {describe(value)}")
    return value


def _parse_int(value: Any, where: Where) -> int:
    if value is None:
        return 0
    # NB: bool is an int in Python but never in JSON; Go also refuses 5.0 for an int field.
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"expected an integer, got {describe(value)}")
    return value


def _parse_str_map(value: Any, where: Where) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"expected an object of strings, got {describe(value)}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise where.error(f"expected string keys, got {describe(key)}")
        if not isinstance(item, str):
            raise where.entry(key).error(f"expected a string, got {describe(item)}")
    return dict(value)


def _parse_str_list(value: Any, where: Where) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise where.error(f"expected a list of strings, got {describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise where.at(index).error(f"expected a string, got {describe(item)}")
    return tuple(value)


def _parse_object(value: Any, where: Where) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"expected an object, got {describe(value)}")
    return copy_json_object(value)


STR: Codec[str] = Codec(_parse_str, lambda value: value)
INT: Codec[int] = Codec(_parse_int, lambda value: value)
STR_MAP: Codec[Mapping[str, str]] = Codec(_parse_str_map, dict)
STR_LIST: Codec[tuple[str, ...]] = Codec(_parse_str_list, list)
#: A free-form JSON object kept as a dict (e.g. ``metadata``), only checked to be an object.
OBJECT: Codec[Mapping[str, Any]] = Codec(_parse_object, copy_json)


def const_str(expected: str) -> Codec[str]:
    """A string that must equal ``expected`` when present (e.g. ``kind``)."""

    def parse(value: Any, where: Where) -> str:
        text = _parse_str(value, where)
        if text not in ("", expected):
            raise where.error(f"expected {json.dumps(expected)}, got {describe(value)}")
        return expected

    return Codec(parse, lambda value: value)


@dataclass(frozen=True, slots=True)
class JsonField:
    """One JSON key of a model: where it lives on the dataclass and how it is (de)serialised."""

    key: str
    attr: str
    codec: Codec[Any]
    #: Serialised even at its default value on objects we build (Go: no ``omitempty``).
    always: bool = False


@dataclass(frozen=True, kw_only=True)
class JsonModel:
    """Base of every model: ``from_dict``/``to_dict`` driven by the class's ``JSON_FIELDS``.

    ``source`` is the mapping the object was read from (a private deep copy), or ``None`` for an
    object built in code. It takes no part in equality: two objects are equal when their typed
    fields are.
    """

    JSON_FIELDS: ClassVar[tuple[JsonField, ...]] = ()

    source: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def object_ref_for(cls, data: Any) -> str:
        """How error messages name an object read from ``data`` (overridden by top-level kinds)."""
        return cls.__name__

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Read an object from decoded JSON; raises :class:`ModelError` on a malformed value."""
        return cls.parse_at(data, Where(cls.object_ref_for(data)))

    @classmethod
    def parse_at(cls, data: Any, where: Where) -> Self:
        """Like :meth:`from_dict` for an object nested at ``where`` inside another one."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise where.error(f"expected an object, got {describe(data)}")
        values: dict[str, Any] = {}
        for spec in cls.JSON_FIELDS:
            if spec.key in data:
                values[spec.attr] = spec.codec.parse(data[spec.key], where.at(spec.key))
        init_names = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = {name: value for name, value in values.items() if name in init_names}
        return cls(**kwargs, source=copy_json_object(data))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to JSON-ready data following the rules in this module's docstring."""
        by_key = {spec.key: spec for spec in self.JSON_FIELDS}
        defaults = _defaults(type(self))
        out: dict[str, Any] = {}
        source = self.source
        if source is not None:
            for key, original in source.items():
                spec = by_key.get(key)
                if spec is None:
                    out[key] = copy_json(original)
                    continue
                current = getattr(self, spec.attr)
                if _reads_as(spec, original, current):
                    out[key] = copy_json(original)
                else:
                    out[key] = spec.codec.dump(current)
        for spec in self.JSON_FIELDS:
            if source is not None and spec.key in source:
                continue
            current = getattr(self, spec.attr)
            if (source is None and spec.always) or current != defaults[spec.attr]:
                out[spec.key] = spec.codec.dump(current)
        return out

    @property
    def unknown_fields(self) -> dict[str, Any]:
        """Keys of the source this model does not know, with their values (a copy)."""
        known = {spec.key for spec in self.JSON_FIELDS}
        return {k: copy_json(v) for k, v in (self.source or {}).items() if k not in known}


M = TypeVar("M", bound=JsonModel)


def nested(model: type[M]) -> Codec[M]:
    """A JSON object read into another :class:`JsonModel`."""
    return Codec(model.parse_at, lambda value: value.to_dict())


def nested_list(model: type[M]) -> Codec[tuple[M, ...]]:
    """A JSON list of objects, each read into ``model``."""

    def parse(value: Any, where: Where) -> tuple[M, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise where.error(f"expected a list of objects, got {describe(value)}")
        return tuple(model.parse_at(item, where.at(index)) for index, item in enumerate(value))

    return Codec(parse, lambda value: [item.to_dict() for item in value])


def _reads_as(spec: JsonField, original: Any, current: Any) -> bool:
    try:
        return bool(spec.codec.parse(original, Where("")) == current)
    except ModelError:
        return False


_DEFAULTS_CACHE: dict[type[JsonModel], dict[str, Any]] = {}


def _defaults(cls: type[JsonModel]) -> dict[str, Any]:
    cached = _DEFAULTS_CACHE.get(cls)
    if cached is None:
        cached = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                cached[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                cached[f.name] = f.default_factory()
        _DEFAULTS_CACHE[cls] = cached
    return cached


class TopLevelMixin:
    """What every top-level kind adds: ``metadata`` accessors and a request body for writes."""

    api_version: str
    kind: str
    metadata: Mapping[str, Any]

    if TYPE_CHECKING:
        # NB: provided at runtime by JsonModel, which every user of this mixin also inherits.
        def to_dict(self) -> dict[str, Any]: ...

    def to_body(self) -> dict[str, Any]:
        """``to_dict`` with ``apiVersion`` and ``kind`` first and always present.

        For create/replace requests: items of a List response carry no type meta, so their
        ``to_dict`` has none either, but the API server wants it on writes.
        """
        data = self.to_dict()
        api_version = data.pop("apiVersion", None) or self.api_version
        kind = data.pop("kind", None) or self.kind
        return {"apiVersion": api_version, "kind": kind, **data}

    def _meta_str(self, key: str) -> str:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else ""

    def _meta_map(self, key: str) -> dict[str, str]:
        value = self.metadata.get(key)
        if not isinstance(value, Mapping):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}

    @property
    def name(self) -> str:
        return self._meta_str("name")

    @property
    def namespace(self) -> str:
        return self._meta_str("namespace")

    @property
    def resource_version(self) -> str:
        return self._meta_str("resourceVersion")

    @property
    def uid(self) -> str:
        return self._meta_str("uid")

    @property
    def labels(self) -> dict[str, str]:
        return self._meta_map("labels")

    @property
    def annotations(self) -> dict[str, str]:
        return self._meta_map("annotations")


def parse_metadata(value: Any, where: Where) -> Mapping[str, Any]:
    """``metadata`` as a dict, checking the types of the keys we read through accessors."""
    metadata = _parse_object(value, where)
    for key in ("name", "namespace", "resourceVersion", "uid", "generateName"):
        if key in metadata:
            _parse_str(metadata[key], where.at(key))
    for key in ("labels", "annotations"):
        if key in metadata:
            _parse_str_map(metadata[key], where.at(key))
    return metadata


METADATA: Codec[Mapping[str, Any]] = Codec(parse_metadata, copy_json)


def new_metadata(
    name: str,
    namespace: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal ``metadata`` dict for an object we are about to create."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def updated_metadata(metadata: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` with top-level keys set (``None`` removes a key)."""
    result = copy_json_object(metadata)
    for key, value in updates.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = copy_json(value)
    return result


def object_ref(kind: str, data: Any) -> str:
    """``DanmNet "ns/name"`` from whatever metadata ``data`` has, for error messages."""
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    if not isinstance(metadata, Mapping):
        return kind
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    if not isinstance(name, str) or not name:
        return kind
    if isinstance(namespace, str) and namespace:
        return f'{kind} "{namespace}/{name}"'
    return f'{kind} "{name}"'
