"""Delta Lake, and the only package that imports ``deltalake`` (a ruff banned-api rule enforces it).

The table layout per contract major version (``schema``), reading part files and appending once (``write``), the
exactly-once commit stage (``commit``) and its write-ahead ledger (``ledger``), the dead-letter tables
(``dead_letters``), backfill range replacement (``replace``), and reads for the jobs, Feast and the data checks
(``tables``, ``snapshots``).
"""
