"""Failover: a planned switchover (zero loss) and the promotion of a replica after the primary is lost.

:mod:`.plan` is the pure core (LSN arithmetic, the switchover guards, the choice of candidate, the
report, the plan-run-unwind loop); :mod:`.local` carries it out on the local stack (PgBouncer
PAUSE/RESUME, ``pg_ctl``, ``pg_promote()``, ``pg_rewind``) and :mod:`.rds` on an AWS stack
(``promote_read_replica``, ``reboot_db_instance(ForceFailover=True)``). Targets choose which:
:meth:`ops.targets.base.AbstractTarget.switchover` and friends.
"""
