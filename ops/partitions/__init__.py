"""Monthly partitions kept by pgops (no pg_partman): :mod:`.plan` is the pure plan from the clock,
:mod:`.maintain` reads the catalog and applies it in short transactions under ``lock_timeout``."""
