-- Rebuilds the legacy tables empty (their shape as 000 created them). The rows come back only
-- from the pre-contract backup: `invoke backup.list --db advent`, then `invoke backup.restore ID`.
CREATE TABLE account (
    id          bigserial PRIMARY KEY,
    email       text,
    name        text,
    password_hash text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
);

CREATE TABLE child (
    id          bigserial PRIMARY KEY,
    account_id  bigint,
    name        text,
    birth_date  date,
    avatar_url  text,
    interests   text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calendar (
    id          bigserial PRIMARY KEY,
    child_id    bigint,
    year        integer,
    title       text,
    theme       text,
    is_published boolean DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calendar_day (
    id          bigserial PRIMARY KEY,
    calendar_id bigint REFERENCES calendar (id) ON DELETE CASCADE,
    day_number  integer,
    title       text,
    content     text,
    is_opened   boolean DEFAULT false,
    opened_at   timestamptz
);

CREATE TABLE chat_record (
    id          bigserial PRIMARY KEY,
    child_id    bigint,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    summary     text
);

CREATE TABLE chat_message (
    id          bigserial PRIMARY KEY,
    chat_id     bigint REFERENCES chat_record (id) ON DELETE CASCADE,
    role        text,
    content     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE surprise_config (
    id          bigserial PRIMARY KEY,
    calendar_id bigint,
    day_number  integer,
    kind        text,
    video_url   text,
    message     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE analytics_event (
    id          bigserial PRIMARY KEY,
    account_id  bigint,
    event_type  text NOT NULL,
    payload     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_child_account ON child (account_id);
CREATE INDEX idx_calendar_child ON calendar (child_id);
CREATE INDEX idx_calendar_day_calendar ON calendar_day (calendar_id);
CREATE INDEX idx_chat_message_chat ON chat_message (chat_id);
CREATE INDEX idx_analytics_event_type ON analytics_event (event_type);
