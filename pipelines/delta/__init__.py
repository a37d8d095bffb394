"""Delta Lake: the offline table per contract major version, written by the commit step, read by Feast."""
