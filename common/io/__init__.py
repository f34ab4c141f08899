"""Adapters: the only package that talks to the API server, the kernel or other processes.

Everything outside ``common.io`` works on plain data and our own exception types; the client
libraries (``kubernetes``, ``pyroute2``) are imported lazily inside these modules so that the CNI
binary never pays for them at start-up.
"""
