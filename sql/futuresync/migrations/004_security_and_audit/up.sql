-- Row-level security for user isolation and organization tenancy (PostgreSQL docs, "Row Security Policies"),
-- forced on every table so that the owner is held by it too, and an audit trail written by triggers.
--
-- Roles (cluster-wide, so created only when missing and never dropped by down.sql):
--   futuresync_app      what the application runs as (SET ROLE from its login role); NOBYPASSRLS. It names the
--                       signed-in user with `SET app.user_id = '<uuid>'` per transaction (SET LOCAL through PgBouncer).
--   futuresync_definer  owns the SECURITY DEFINER helpers: the membership lookups the policies call (a policy on
--                       organization_members that read organization_members itself would recurse) and the audit
--                       trigger; it can read memberships and append to audit_log, nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'futuresync_app') THEN
        CREATE ROLE futuresync_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'futuresync_definer') THEN
        CREATE ROLE futuresync_definer NOLOGIN;
    END IF;
    ALTER ROLE futuresync_app NOSUPERUSER NOBYPASSRLS;
    ALTER ROLE futuresync_definer NOSUPERUSER NOBYPASSRLS;
END $$;

CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

CREATE FUNCTION app_org_ids() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET row_security = on AS
$$ SELECT coalesce(array_agg(organization_id), '{}') FROM organization_members
   WHERE user_id = app_user_id() AND invitation_status = 'accepted' $$;

CREATE FUNCTION app_admin_org_ids() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET row_security = on AS
$$ SELECT coalesce(array_agg(organization_id), '{}') FROM organization_members
   WHERE user_id = app_user_id() AND invitation_status = 'accepted' AND role IN ('owner', 'admin') $$;

-- who/what/when/old/new; password hashes never reach the log.
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET row_security = on AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) - 'password_hash' END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) - 'password_hash' END;
    rec jsonb := coalesce(new_row, old_row);
BEGIN
    INSERT INTO audit_log (actor_user_id, subject_user_id, organization_id, table_name, operation, row_id,
                           old_data, new_data, changed_columns)
    VALUES (app_user_id(),
            CASE WHEN TG_TABLE_NAME = 'users' THEN rec->>'id' ELSE rec->>'user_id' END::uuid,
            CASE WHEN TG_TABLE_NAME = 'organizations' THEN rec->>'id' ELSE rec->>'organization_id' END::uuid,
            TG_TABLE_NAME, TG_OP, coalesce(rec->>'id', rec->>'user_id'), old_row, new_row,
            CASE WHEN TG_OP = 'UPDATE' THEN
                (SELECT array_agg(n.key ORDER BY n.key) FROM jsonb_each(new_row) n WHERE old_row -> n.key IS DISTINCT FROM n.value)
            END);
    RETURN NULL;
END $$;

ALTER FUNCTION app_org_ids() OWNER TO futuresync_definer;
ALTER FUNCTION app_admin_org_ids() OWNER TO futuresync_definer;
ALTER FUNCTION audit_row() OWNER TO futuresync_definer;

CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER visions_audit AFTER INSERT OR UPDATE OR DELETE ON visions FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER daily_actions_audit AFTER INSERT OR UPDATE OR DELETE ON daily_actions FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER user_achievements_audit AFTER INSERT OR UPDATE OR DELETE ON user_achievements FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER organizations_audit AFTER INSERT OR UPDATE OR DELETE ON organizations FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER organization_members_audit AFTER INSERT OR UPDATE OR DELETE ON organization_members FOR EACH ROW EXECUTE FUNCTION audit_row();

GRANT USAGE ON SCHEMA public TO futuresync_app, futuresync_definer;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, visions, daily_actions, time_entries, user_progress, user_achievements,
    organizations, organization_members TO futuresync_app;
GRANT SELECT ON achievements TO futuresync_app;
GRANT SELECT, INSERT ON analytics_events TO futuresync_app;
GRANT SELECT ON audit_log TO futuresync_app;
GRANT SELECT ON organization_members TO futuresync_definer;
GRANT INSERT ON audit_log TO futuresync_definer;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO futuresync_definer;

ALTER TABLE users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE visions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE daily_actions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE time_entries ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE user_progress ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE achievements ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE user_achievements ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE organization_members ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A user sees their own profile and the profiles of people in their organizations; changes only their own.
CREATE POLICY users_select ON users FOR SELECT TO futuresync_app
    USING (id = app_user_id() OR EXISTS (SELECT 1 FROM organization_members m
                                         WHERE m.user_id = users.id AND m.organization_id = ANY (app_org_ids())));
CREATE POLICY users_update ON users FOR UPDATE TO futuresync_app USING (id = app_user_id()) WITH CHECK (id = app_user_id());

-- Personal data: the owner only.
CREATE POLICY visions_owner ON visions TO futuresync_app USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
CREATE POLICY daily_actions_owner ON daily_actions TO futuresync_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
CREATE POLICY time_entries_owner ON time_entries TO futuresync_app
    USING (EXISTS (SELECT 1 FROM daily_actions a WHERE a.id = time_entries.daily_action_id))
    WITH CHECK (EXISTS (SELECT 1 FROM daily_actions a WHERE a.id = time_entries.daily_action_id));
CREATE POLICY user_progress_owner ON user_progress TO futuresync_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
CREATE POLICY user_achievements_owner ON user_achievements TO futuresync_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
CREATE POLICY achievements_read ON achievements FOR SELECT TO futuresync_app USING (true);

-- Tenancy: members see their organizations; owners and admins change them and their memberships.
CREATE POLICY organizations_member_read ON organizations FOR SELECT TO futuresync_app USING (id = ANY (app_org_ids()));
CREATE POLICY organizations_admin_write ON organizations FOR UPDATE TO futuresync_app
    USING (id = ANY (app_admin_org_ids())) WITH CHECK (id = ANY (app_admin_org_ids()));
CREATE POLICY organization_members_read ON organization_members FOR SELECT TO futuresync_app
    USING (user_id = app_user_id() OR organization_id = ANY (app_org_ids()));
CREATE POLICY organization_members_admin_insert ON organization_members FOR INSERT TO futuresync_app
    WITH CHECK (organization_id = ANY (app_admin_org_ids()));
CREATE POLICY organization_members_admin_update ON organization_members FOR UPDATE TO futuresync_app
    USING (organization_id = ANY (app_admin_org_ids())) WITH CHECK (organization_id = ANY (app_admin_org_ids()));
CREATE POLICY organization_members_admin_delete ON organization_members FOR DELETE TO futuresync_app
    USING (organization_id = ANY (app_admin_org_ids()));
CREATE POLICY organization_members_definer_read ON organization_members FOR SELECT TO futuresync_definer USING (true);

-- Events: a user's own; organization admins see their organization's.
CREATE POLICY analytics_events_read ON analytics_events FOR SELECT TO futuresync_app
    USING (user_id = app_user_id() OR organization_id = ANY (app_admin_org_ids()));
CREATE POLICY analytics_events_insert ON analytics_events FOR INSERT TO futuresync_app WITH CHECK (user_id = app_user_id());

-- Audit: read by the user it is about and by their organization's admins; written only by the trigger.
CREATE POLICY audit_log_read ON audit_log FOR SELECT TO futuresync_app
    USING (subject_user_id = app_user_id() OR organization_id = ANY (app_admin_org_ids()));
CREATE POLICY audit_log_definer_insert ON audit_log FOR INSERT TO futuresync_definer WITH CHECK (true);
