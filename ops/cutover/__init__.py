"""Blue/green cutover: one interface (prepare, status, run, verify, rollback, finish), two engines —
the RDS Blue/Green Deployments API (:mod:`ops.cutover.rds`) and logical replication behind the local
stack's pooler."""
