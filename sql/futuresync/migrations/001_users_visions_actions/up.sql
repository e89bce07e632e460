-- FutureSync (seed 001): users, visions, daily actions, time tracking, progress and achievements.
CREATE TYPE user_role AS ENUM ('user', 'coach', 'admin');
CREATE TYPE vision_category AS ENUM ('health', 'career', 'relationships', 'personal-growth');
CREATE TYPE action_status AS ENUM ('pending', 'in_progress', 'completed', 'skipped');

CREATE TABLE users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                varchar(255) NOT NULL,
    password_hash        varchar(255),                       -- NULL for OAuth sign-ins
    auth_provider        text NOT NULL DEFAULT 'password' CHECK (auth_provider IN ('password', 'google', 'apple', 'github')),
    name                 text,
    display_name         text,
    avatar_url           text,
    timezone             text NOT NULL DEFAULT 'UTC',
    locale               text NOT NULL DEFAULT 'en',
    role                 user_role NOT NULL DEFAULT 'user',
    onboarding_completed boolean NOT NULL DEFAULT false,
    trial_ends_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT users_password_or_oauth CHECK (password_hash IS NOT NULL OR auth_provider <> 'password')
);
-- Soft delete: an address is unique among live accounts only; lower() so Ann@x and ann@x are one.
CREATE UNIQUE INDEX users_email_live_key ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_created_at_idx ON users (created_at);

CREATE TABLE visions (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                 uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category                vision_category NOT NULL,
    title                   text NOT NULL,
    description             text,
    priority                smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
    time_allocation_minutes integer NOT NULL DEFAULT 30 CHECK (time_allocation_minutes BETWEEN 0 AND 1440),
    target_date             date,
    ai_analysis             jsonb,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    archived_at             timestamptz
);
CREATE INDEX visions_user_id_idx ON visions (user_id) WHERE archived_at IS NULL;

CREATE TABLE daily_actions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    vision_id              uuid REFERENCES visions (id) ON DELETE SET NULL,
    action_date            date NOT NULL,
    description            text NOT NULL,
    estimated_time_minutes integer NOT NULL DEFAULT 15 CHECK (estimated_time_minutes >= 0),
    actual_time_minutes    integer CHECK (actual_time_minutes >= 0),
    status                 action_status NOT NULL DEFAULT 'pending',
    ai_generated           boolean NOT NULL DEFAULT false,
    ai_reasoning           text,
    ai_model               text,
    started_at             timestamptz,
    completed_at           timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT daily_actions_completed_has_time CHECK (status <> 'completed' OR completed_at IS NOT NULL)
);
CREATE INDEX daily_actions_user_date_idx ON daily_actions (user_id, action_date);
CREATE INDEX daily_actions_vision_id_idx ON daily_actions (vision_id);

-- Time tracking integration: references its action only, so it belongs to a user through a chain.
CREATE TABLE time_entries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    daily_action_id uuid NOT NULL REFERENCES daily_actions (id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    source          text NOT NULL DEFAULT 'timer' CHECK (source IN ('timer', 'manual', 'integration')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_entries_order CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX time_entries_daily_action_id_idx ON time_entries (daily_action_id);

CREATE TABLE user_progress (
    user_id                     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    current_streak              integer NOT NULL DEFAULT 0 CHECK (current_streak >= 0),
    longest_streak              integer NOT NULL DEFAULT 0 CHECK (longest_streak >= 0),
    total_days_completed        integer NOT NULL DEFAULT 0,
    total_actions_completed     integer NOT NULL DEFAULT 0,
    total_time_invested_minutes bigint NOT NULL DEFAULT 0,
    last_completed_on           date,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_progress_streaks CHECK (longest_streak >= current_streak)
);

CREATE TABLE achievements (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL UNIQUE,
    title       text NOT NULL,
    description text,
    criteria    jsonb NOT NULL CHECK (jsonb_typeof(criteria) = 'object'),
    icon        text,
    color       text,
    tier        smallint NOT NULL DEFAULT 1 CHECK (tier BETWEEN 1 AND 5),
    requires_id uuid REFERENCES achievements (id),              -- progressive unlocking
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX achievements_criteria_idx ON achievements USING gin (criteria jsonb_path_ops);

CREATE TABLE user_achievements (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id uuid NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    unlocked_at    timestamptz NOT NULL DEFAULT now(),
    progress       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, achievement_id)
);
CREATE INDEX user_achievements_achievement_id_idx ON user_achievements (achievement_id);

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER visions_updated_at BEFORE UPDATE ON visions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER daily_actions_updated_at BEFORE UPDATE ON daily_actions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_progress_updated_at BEFORE UPDATE ON user_progress FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO achievements (code, title, description, criteria, icon, tier) VALUES
    ('first-action', 'First step', 'Complete your first daily action', '{"actions_completed": 1}', 'footprints', 1),
    ('streak-7', 'One week', 'Complete actions 7 days in a row', '{"streak_days": 7}', 'flame', 2),
    ('streak-30', 'One month', 'Complete actions 30 days in a row', '{"streak_days": 30}', 'fire', 3),
    ('all-areas', 'Balanced', 'Have a vision in every category', '{"categories": ["health", "career", "relationships", "personal-growth"]}', 'compass', 3),
    ('hours-100', 'Invested', 'Invest 100 hours in your visions', '{"minutes_invested": 6000}', 'hourglass', 4);
