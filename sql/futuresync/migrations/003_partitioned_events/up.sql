-- analytics_events and audit_log, partitioned by month (PostgreSQL docs, "Table Partitioning": declarative
-- range partitioning). pgops keeps the partitions (`invoke db.partitions`): its policy for each table is the
-- JSON after "pgops:partitions" in the table's comment — premake (months created ahead of the clock, as
-- pg_partman's premake) and retention_months (older partitions are detached, archived on request, dropped).
-- analytics_events has no default partition, so retention can DETACH ... CONCURRENTLY; audit_log keeps a
-- default partition so that an audit row is never refused, whatever its timestamp.
CREATE TABLE analytics_events (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id         uuid,              -- owner, no foreign key (declared in sql/futuresync/gdpr.json)
    organization_id uuid,
    session_id      uuid,
    event_name      text NOT NULL CHECK (event_name ~ '^[a-z][a-z0-9_.]{0,99}$'),
    properties      jsonb NOT NULL DEFAULT '{}',
    page            text,
    platform        text CHECK (platform IN ('web', 'ios', 'android', 'api')),
    app_version     text,
    duration_ms     integer CHECK (duration_ms >= 0),
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX analytics_events_user_idx ON analytics_events (user_id, occurred_at);
CREATE INDEX analytics_events_org_idx ON analytics_events (organization_id, occurred_at);
CREATE INDEX analytics_events_name_idx ON analytics_events (event_name, occurred_at);
COMMENT ON TABLE analytics_events IS
    'Product analytics, one row per event. pgops:partitions {"interval": "month", "premake": 3, "retention_months": 13}';

CREATE TABLE audit_log (
    id               bigserial,
    logged_at        timestamptz NOT NULL DEFAULT now(),
    actor_user_id    uuid,             -- the application user (app.user_id) who made the change
    subject_user_id  uuid,             -- the user the changed row belongs to
    organization_id  uuid,
    db_user          text NOT NULL DEFAULT current_user,
    application_name text DEFAULT current_setting('application_name', true),
    table_name       text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'GDPR_EXPORT', 'GDPR_ERASE')),
    row_id           text,
    old_data         jsonb,
    new_data         jsonb,
    changed_columns  text[],
    txid             bigint NOT NULL DEFAULT txid_current(),
    PRIMARY KEY (id, logged_at)
) PARTITION BY RANGE (logged_at);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_user_id, logged_at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, logged_at);
CREATE INDEX audit_log_org_idx ON audit_log (organization_id, logged_at);
CREATE INDEX audit_log_row_idx ON audit_log (table_name, row_id);
COMMENT ON TABLE audit_log IS
    'Who changed what, when, with the old and new row. pgops:partitions {"interval": "month", "premake": 3, "retention_months": 84}';
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

-- Bootstrap: this month and the next three, so rows can land before the first `invoke db.partitions`; from then
-- on pgops creates them ahead of the clock. Every partition has row-level security enabled and forced with no
-- policy of its own and no grant to the application: a direct read of a partition returns nothing.
DO $$
DECLARE
    t text;
    m date;
    part text;
BEGIN
    FOREACH t IN ARRAY ARRAY['analytics_events', 'audit_log'] LOOP
        FOR i IN 0..3 LOOP
            m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
            part := format('%s_p%s', t, to_char(m, 'YYYY_MM'));
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, t,
                           m::text || ' 00:00:00+00', (m + interval '1 month')::date::text || ' 00:00:00+00');
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', part);
        END LOOP;
    END LOOP;
END $$;
ALTER TABLE audit_log_default ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
