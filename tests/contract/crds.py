"""A DanmNet-shaped CRD used by the contract tests."""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "danm.k8s.io", "v1", "danmnets"


def danmnet_crd(*, scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": PLURAL,
                "singular": "danmnet",
                "kind": "DanmNet",
                "shortNames": ["dn"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "NetworkType", "type": "string", "jsonPath": ".spec.NetworkType"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["NetworkID"],
                                    "properties": {
                                        "NetworkID": {"type": "string"},
                                        "NetworkType": {"type": "string", "default": "ipvlan"},
                                        "Options": {
                                            "type": "object",
                                            "properties": {
                                                "vlan": {"type": "integer", "maximum": 4094}
                                            },
                                        },
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def danmnet(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DanmNet",
        "metadata": {"name": name},
        "spec": {"NetworkID": name, **spec},
    }
