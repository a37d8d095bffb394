"""Importing OpenMetadata's SDK without paying for what lineage does not use.

``import metadata.<anything>`` first runs ``metadata/__init__.py``, which imports the SDK's profiler and registers
it in a dependency container used only by the ingestion workflows (``metadata ingest``, the profiler). That costs
about 7 s on an idle machine (an earlier probe), minutes under load. The generated models and the REST client never
touch that container, so :func:`skip_sdk_package_init` registers the ``metadata`` package as a bare namespace (its
real path, no ``__init__`` code) before the first import. Building the whole lineage plan in a fresh interpreter
took 3.1x less time that way (``benchmarks/lineage_import.py``, under heavy load: 119 s against 373 s). Nothing in
this project runs the SDK's workflows; a process that already imported ``metadata`` keeps its full package.

Every module of :mod:`pipelines.lineage` imports the SDK inside its functions, after calling this: importing the
package itself stays free, and nothing on a hot path pays for OpenMetadata.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import uuid

#: The id placed in a reference to an entity that does not exist yet (dry run, or before its create call answers);
#: the publisher swaps it for the id the server gave (:mod:`pipelines.lineage.publish`).
UNRESOLVED_ID = uuid.UUID(int=0)


def skip_sdk_package_init() -> None:
    """Make ``metadata`` importable without running its package ``__init__`` (see the module docstring)."""
    if "metadata" in sys.modules:
        return
    spec = importlib.util.find_spec("metadata")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("openmetadata-ingestion is not installed (the `metadata` package is missing)")
    package = types.ModuleType("metadata", "OpenMetadata SDK (package __init__ skipped: pipelines.lineage.sdk)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules["metadata"] = package
