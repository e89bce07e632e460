-- describe-it "Migration 001: schema alignment" (seed 003): 3 tables, 7 indexes, 4 functions,
-- 4 triggers, RLS on all three tables with 12 policies, and initial user_progress rows.
--
-- Supabase's auth.uid() does not exist on plain PostgreSQL: describeit_current_user_id() reads the
-- user id the application sets per transaction (SET LOCAL app.current_user_id = '<uuid>'), and
-- backend jobs identify as the service with SET LOCAL app.role = 'service'.

CREATE FUNCTION describeit_current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('app.current_user_id', true), '')::uuid
$$;

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

-- 1. user_api_keys: encrypted third-party credentials (encryption happens in the application).
CREATE TABLE user_api_keys (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  openai_key_encrypted TEXT,
  unsplash_key_encrypted TEXT,
  anthropic_key_encrypted TEXT,
  last_validated_at TIMESTAMP WITH TIME ZONE,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_user_api_keys_last_validated ON user_api_keys(last_validated_at);

-- 2. user_progress: aggregate statistics, kept current by the session completion trigger.
CREATE TABLE user_progress (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
  total_sessions INTEGER NOT NULL DEFAULT 0,
  completed_sessions INTEGER NOT NULL DEFAULT 0,
  total_descriptions INTEGER NOT NULL DEFAULT 0,
  total_words_learned INTEGER NOT NULL DEFAULT 0,
  total_phrases_saved INTEGER NOT NULL DEFAULT 0,
  total_questions_answered INTEGER NOT NULL DEFAULT 0,
  correct_answers INTEGER NOT NULL DEFAULT 0,
  accuracy_rate DECIMAL(5,2) NOT NULL DEFAULT 0,
  current_streak INTEGER NOT NULL DEFAULT 0,
  longest_streak INTEGER NOT NULL DEFAULT 0,
  last_session_at TIMESTAMP WITH TIME ZONE,
  total_study_minutes INTEGER NOT NULL DEFAULT 0,
  average_session_minutes DECIMAL(6,2) NOT NULL DEFAULT 0,
  level INTEGER NOT NULL DEFAULT 1,
  experience_points INTEGER NOT NULL DEFAULT 0,
  achievements JSONB NOT NULL DEFAULT '[]',
  badges JSONB NOT NULL DEFAULT '[]',
  weekly_goal_minutes INTEGER NOT NULL DEFAULT 60,
  weekly_progress_minutes INTEGER NOT NULL DEFAULT 0,
  preferred_difficulty VARCHAR(20) DEFAULT 'beginner',
  last_activity_date DATE,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_user_progress_level ON user_progress(level);
CREATE INDEX idx_user_progress_last_activity ON user_progress(last_activity_date);

-- 3. export_history: audit trail of data exports.
CREATE TABLE export_history (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  export_type VARCHAR(20) NOT NULL CHECK (export_type IN ('vocabulary', 'descriptions', 'progress', 'full')),
  format VARCHAR(10) NOT NULL CHECK (format IN ('pdf', 'csv', 'json', 'anki')),
  status VARCHAR(20) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  file_name TEXT,
  file_size_bytes BIGINT,
  file_url TEXT,
  item_count INTEGER DEFAULT 0,
  filters JSONB NOT NULL DEFAULT '{}',
  error_message TEXT,
  error_code VARCHAR(50),
  started_at TIMESTAMP WITH TIME ZONE,
  completed_at TIMESTAMP WITH TIME ZONE,
  duration_ms INTEGER,
  expires_at TIMESTAMP WITH TIME ZONE,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_export_history_user_id ON export_history(user_id);
CREATE INDEX idx_export_history_status ON export_history(status);
CREATE INDEX idx_export_history_created_at ON export_history(created_at);
CREATE INDEX idx_export_history_expires_at ON export_history(expires_at);

-- updated_at triggers (3)
CREATE TRIGGER trg_user_api_keys_updated_at BEFORE UPDATE ON user_api_keys
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_user_progress_updated_at BEFORE UPDATE ON user_progress
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_export_history_updated_at BEFORE UPDATE ON export_history
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Progress bookkeeping: one row per user, created on demand.
CREATE FUNCTION ensure_user_progress(p_user_id uuid) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO user_progress (user_id) VALUES (p_user_id) ON CONFLICT (user_id) DO NOTHING
$$;

CREATE FUNCTION update_user_progress_on_session_complete() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  day date := coalesce(NEW.completed_at, now())::date;
BEGIN
  PERFORM ensure_user_progress(NEW.user_id);
  UPDATE user_progress p SET
    completed_sessions       = p.completed_sessions + 1,
    total_questions_answered = p.total_questions_answered + coalesce(NEW.questions_answered, 0),
    correct_answers          = p.correct_answers + coalesce(NEW.correct_answers, 0),
    total_words_learned      = p.total_words_learned + coalesce(NEW.words_learned, 0),
    total_study_minutes      = p.total_study_minutes + coalesce(NEW.duration_minutes, 0),
    accuracy_rate = CASE WHEN p.total_questions_answered + coalesce(NEW.questions_answered, 0) = 0 THEN 0
                         ELSE round(100.0 * (p.correct_answers + coalesce(NEW.correct_answers, 0))
                                    / (p.total_questions_answered + coalesce(NEW.questions_answered, 0)), 2) END,
    average_session_minutes = round((p.total_study_minutes + coalesce(NEW.duration_minutes, 0))::numeric
                                    / (p.completed_sessions + 1), 2),
    current_streak = CASE WHEN p.last_activity_date = day THEN p.current_streak
                          WHEN p.last_activity_date = day - 1 THEN p.current_streak + 1
                          ELSE 1 END,
    longest_streak = greatest(p.longest_streak,
                              CASE WHEN p.last_activity_date = day THEN p.current_streak
                                   WHEN p.last_activity_date = day - 1 THEN p.current_streak + 1
                                   ELSE 1 END),
    last_session_at = coalesce(NEW.completed_at, now()),
    last_activity_date = day
  WHERE p.user_id = NEW.user_id;
  RETURN NEW;
END
$$;

CREATE TRIGGER trg_learning_sessions_progress AFTER UPDATE OF status ON learning_sessions
  FOR EACH ROW WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed')
  EXECUTE FUNCTION update_user_progress_on_session_complete();

-- Row-level security: users see and change only their own rows; the backend service role
-- (app.role = 'service') maintains progress and exports. 4 + 4 + 4 = 12 policies.
ALTER TABLE user_api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE export_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY user_api_keys_select_own ON user_api_keys FOR SELECT USING (user_id = describeit_current_user_id());
CREATE POLICY user_api_keys_insert_own ON user_api_keys FOR INSERT WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY user_api_keys_update_own ON user_api_keys FOR UPDATE
  USING (user_id = describeit_current_user_id()) WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY user_api_keys_delete_own ON user_api_keys FOR DELETE USING (user_id = describeit_current_user_id());

CREATE POLICY user_progress_select_own ON user_progress FOR SELECT USING (user_id = describeit_current_user_id());
CREATE POLICY user_progress_insert_own ON user_progress FOR INSERT WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY user_progress_update_own ON user_progress FOR UPDATE
  USING (user_id = describeit_current_user_id()) WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY user_progress_service_all ON user_progress FOR ALL
  USING (current_setting('app.role', true) = 'service') WITH CHECK (current_setting('app.role', true) = 'service');

CREATE POLICY export_history_select_own ON export_history FOR SELECT USING (user_id = describeit_current_user_id());
CREATE POLICY export_history_insert_own ON export_history FOR INSERT WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY export_history_update_own ON export_history FOR UPDATE
  USING (user_id = describeit_current_user_id()) WITH CHECK (user_id = describeit_current_user_id());
CREATE POLICY export_history_service_all ON export_history FOR ALL
  USING (current_setting('app.role', true) = 'service') WITH CHECK (current_setting('app.role', true) = 'service');

-- Initial data: one progress row per existing user, computed from their past sessions.
INSERT INTO user_progress (user_id, total_sessions, completed_sessions, total_questions_answered, correct_answers,
                           total_words_learned, total_study_minutes, accuracy_rate, last_session_at,
                           last_activity_date, total_descriptions, total_phrases_saved)
SELECT u.id,
       count(s.id),
       count(s.id) FILTER (WHERE s.status = 'completed'),
       coalesce(sum(s.questions_answered), 0),
       coalesce(sum(s.correct_answers), 0),
       coalesce(sum(s.words_learned), 0),
       coalesce(sum(s.duration_minutes), 0),
       CASE WHEN coalesce(sum(s.questions_answered), 0) = 0 THEN 0
            ELSE round(100.0 * sum(s.correct_answers) / sum(s.questions_answered), 2) END,
       max(s.completed_at),
       max(s.completed_at)::date,
       (SELECT count(*) FROM descriptions d WHERE d.user_id = u.id),
       (SELECT count(*) FROM vocabulary_items v WHERE v.user_id = u.id)
FROM users u
LEFT JOIN learning_sessions s ON s.user_id = u.id
GROUP BY u.id
ON CONFLICT (user_id) DO NOTHING;
