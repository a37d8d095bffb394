"""Online serving: ``feature-platform serve``, Feast's ``POST /get-online-features`` with TTLs, fallbacks and load
shedding, read straight from the online store Feast's layout defines (docs/serving.md).

A request passes the modules in this order:

``limits``     admission: in-flight bound (503 at once), per-client rate limit (429 + Retry-After)
``request``    parse and validate the body (400, 413)
``resolve``    which view serves each feature, per entity (the rollout's seam: a :class:`~.resolve.Router`)
``stores``     read the values (SQLite, or Redis through an asyncio client with hiredis) under the deadline
``fallbacks``  TTL (``OUTSIDE_MAX_AGE``) and the contract's degradation plan, per value
``encode``     Feast's response shape, with orjson

Around them: ``catalog`` (what can be served, from the contracts), ``values`` (Feast's byte formats), ``metrics``
(the ``fp_serve_*`` names), ``app`` (the RSGI app and its routes), ``pinning`` and ``server`` (Granian workers
sharing the port, one pinned per CPU).
"""
