"""Feast, driven by the contracts: the store (``store``), its objects built from ``contracts/`` (``repo``), loading the
newest Delta values into the online store and reading them back (``online``).

``data_dir`` holds two small Feast plug-ins that let the Feast CLI follow ``FP_DATA_DIR`` (see feature_repo/README.md).
Every module here imports Feast lazily or is only imported by code that needs Feast: importing Feast costs seconds.
"""
