"""An in-memory stand-in for kube-apiserver, for tests and demos.

Our components talk to Kubernetes through the official Python client and operators use
``kubectl``; both must be unable to tell this server from the real one for the features
we rely on (CRUD, optimistic concurrency, watches, CRDs, admission). Layout:

* ``errors``     -- the ``Status`` vocabulary of kube-apiserver (reason, code, details).
* ``resources``  -- the table of built-in resources and the mapping of CRDs to served ones.
* ``selectors``  -- label and field selector parsing and matching (pure).
* ``patches``    -- JSON merge patch, JSON patch and strategic merge patch (pure).
* ``store``      -- objects, the cluster-wide resourceVersion counter and the event log.
* ``registry``   -- object lifecycle semantics, admission and schema hooks.
* ``server``     -- the thin aiohttp layer: routing, discovery, tables, watch streams.
* ``testing``    -- run it in a background thread from pytest.
"""
