"""``invoke health``: one check per row, judged against the thresholds the alarms use (``checks``,
pure), measured on every node of the target (``probe``, I/O)."""
