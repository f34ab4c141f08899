"""The CNI protocol as pure code: wire types, version rules and the verb dispatcher.

Kept import-light on purpose (stdlib ``json``/``re`` only): the runtime starts the plugin once
per pod and network, so every module imported here is paid on each call.
"""
