"""Online data transfer from a legacy schema to its v2 (expand → transfer → validate → contract).

Pure cores: :mod:`.spec` (the declaration beside the migrations), :mod:`.batches` (batch ranges,
throttling, rate and ETA), :mod:`.compare` (validation verdicts). I/O edge: :mod:`.engine`
(batched copy, change capture, catch-up, quarantine) and :mod:`.validate` (counts and checksums on
both sides, recorded in the ledger). The gate on the contract migration is :mod:`ops.migrations.gate`.
"""
