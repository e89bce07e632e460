-- pgops:gate=validation
-- pgops:destructive
-- Seed 004, Phase 5 (cleanup "only after thorough testing"): the contract step (pgroll `complete`).
-- The gate directive above holds it back until `invoke db.validate --db advent` has recorded a
-- passing validation newer than the last `invoke db.transfer`, with no legacy write since; until
-- then db.migrate and deploy stop before it and report it as waiting for validation.
DROP TABLE analytics_event;
DROP TABLE surprise_config;
DROP TABLE chat_message;
DROP TABLE chat_record;
DROP TABLE calendar_day;
DROP TABLE calendar;
DROP TABLE child;
DROP TABLE account;
