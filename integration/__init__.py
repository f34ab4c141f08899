"""Deployment artefacts (CRDs, manifests, CNI config) and the ``make demo`` scenario.

Only ``integration.demo`` is Python; the package exists so that ``python -m integration.demo``
runs from the repository root. It is not part of the installed distribution.
"""
