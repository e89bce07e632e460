-- The Advent Calendar's legacy schema as it runs today (seed 004, "Legacy Table" column): eight
-- tables with the loose constraints the team shipped: nullable emails, no foreign key from child
-- to account (orphans exist), no uniqueness on a child's calendar per year, day numbers unchecked,
-- chat roles and analytics event types as free text. On a database that already has these tables,
-- record it with `invoke db.baseline --db advent --to 0` instead of running this.
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
