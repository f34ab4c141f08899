"""The error types of the pure model layer.

Everything that turns untrusted JSON (API objects, Pod annotations) into our dataclasses fails with
one of these, never with a bare ``KeyError``/``TypeError``, so callers can answer a user with a
message that names the object and the exact place that is wrong::

    ValueError
     ├─ ModelError       an API object (DanmNet, DanmEp, ...) has a field of the wrong type/value
     └─ AnnotationError  the Pod's ``danm.k8s.io/interfaces`` annotation is unusable

Both are permanent errors: retrying with the same input cannot succeed.
"""

from __future__ import annotations


class ModelError(ValueError):
    """An API object could not be read into (or built as) a model.

    ``object_ref`` names the object (e.g. ``DanmNet "default/internal"``), ``field_path`` is the
    dotted JSON path inside it (e.g. ``spec.Options.vlan``; ``""`` for the object itself) and
    ``reason`` says what is wrong with the value found there.
    """

    def __init__(self, object_ref: str, field_path: str, reason: str) -> None:
        self.object_ref = object_ref
        self.field_path = field_path
        self.reason = reason
        where = f"{field_path}: " if field_path else ""
        super().__init__(f"invalid {object_ref}: {where}{reason}")


class AnnotationError(ValueError):
    """The ``danm.k8s.io/interfaces`` annotation of a Pod is malformed.

    ``pod`` is the Pod's name, ``index`` the 0-based position of the offending network connection
    (``None`` when the annotation as a whole is bad) and ``reason`` the bare explanation.
    """

    def __init__(self, pod: str, reason: str, index: int | None = None) -> None:
        self.pod = pod
        self.index = index
        self.reason = reason
        if index is None:
            message = (
                f"Can't create network interfaces for Pod: {pod} due to badly formatted "
                f"danm.k8s.io/interfaces definition in Pod annotation:{reason}"
            )
        else:
            message = (
                f"DANM annotation is invalid for Pod: {pod}, because:network connection "
                f"no.:{index} {reason}"
            )
        super().__init__(message)
