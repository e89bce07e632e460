DROP POLICY audit_log_definer_insert ON audit_log;
DROP POLICY audit_log_read ON audit_log;
DROP POLICY analytics_events_insert ON analytics_events;
DROP POLICY analytics_events_read ON analytics_events;
DROP POLICY organization_members_definer_read ON organization_members;
DROP POLICY organization_members_admin_delete ON organization_members;
DROP POLICY organization_members_admin_update ON organization_members;
DROP POLICY organization_members_admin_insert ON organization_members;
DROP POLICY organization_members_read ON organization_members;
DROP POLICY organizations_admin_write ON organizations;
DROP POLICY organizations_member_read ON organizations;
DROP POLICY achievements_read ON achievements;
DROP POLICY user_achievements_owner ON user_achievements;
DROP POLICY user_progress_owner ON user_progress;
DROP POLICY time_entries_owner ON time_entries;
DROP POLICY daily_actions_owner ON daily_actions;
DROP POLICY visions_owner ON visions;
DROP POLICY users_update ON users;
DROP POLICY users_select ON users;

ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_events NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE organization_members NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE user_achievements NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE achievements NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE user_progress NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE time_entries NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE daily_actions NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE visions NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
ALTER TABLE users NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

REVOKE USAGE ON SEQUENCE audit_log_id_seq FROM futuresync_definer;
REVOKE INSERT ON audit_log FROM futuresync_definer;
REVOKE SELECT ON organization_members FROM futuresync_definer;
REVOKE SELECT ON audit_log FROM futuresync_app;
REVOKE SELECT, INSERT ON analytics_events FROM futuresync_app;
REVOKE SELECT ON achievements FROM futuresync_app;
REVOKE SELECT, INSERT, UPDATE, DELETE ON users, visions, daily_actions, time_entries, user_progress, user_achievements,
    organizations, organization_members FROM futuresync_app;
REVOKE USAGE ON SCHEMA public FROM futuresync_app, futuresync_definer;

DROP TRIGGER organization_members_audit ON organization_members;
DROP TRIGGER organizations_audit ON organizations;
DROP TRIGGER user_achievements_audit ON user_achievements;
DROP TRIGGER daily_actions_audit ON daily_actions;
DROP TRIGGER visions_audit ON visions;
DROP TRIGGER users_audit ON users;
DROP FUNCTION audit_row();
DROP FUNCTION app_admin_org_ids();
DROP FUNCTION app_org_ids();
DROP FUNCTION app_user_id();
-- The roles futuresync_app and futuresync_definer are cluster-wide (other databases may use them): kept.
