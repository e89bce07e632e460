"""Blue/green cutover: the local stack over logical replication behind PgBouncer (:mod:`.local`),
AWS stacks through the RDS Blue/Green Deployments API (:mod:`.rds`)."""
