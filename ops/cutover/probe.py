"""The cutover's write probe lives in :mod:`ops.probe` (failover measures clients with it too); this
module keeps the names the cutover code imports."""
from __future__ import annotations

from ..probe import PROBE_TABLE, WriteProbe, create_probe_table

__all__ = ["PROBE_TABLE", "WriteProbe", "create_probe_table"]
