-- Rollback of describe-it Migration 001, in reverse dependency order. Policies, indexes and the
-- updated_at triggers go with their tables; the trigger on learning_sessions is dropped by name.
DROP TRIGGER trg_learning_sessions_progress ON learning_sessions;
DROP TABLE export_history;
DROP TABLE user_progress;
DROP TABLE user_api_keys;
DROP FUNCTION update_user_progress_on_session_complete();
DROP FUNCTION ensure_user_progress(uuid);
DROP FUNCTION set_updated_at();
DROP FUNCTION describeit_current_user_id();
