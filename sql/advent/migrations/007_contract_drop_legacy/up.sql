-- pgops:gate=validation
-- pgops:destructive
-- Seed 004, Phase 5 (cleanup "only after thorough testing"): the contract step (pgroll `complete`).
-- The gate directive above holds it back until `invoke db.validate --db advent` has recorded a
-- passing validation newer than the last `invoke db.transfer`, with no legacy write since; until
-- then db.migrate and deploy stop before it and report it as waiting for validation.
-- The gate was read before this transaction; a legacy write committed since would be lost with the
-- tables. So: lock them against writers, and refuse (rolling back) if the capture trigger recorded one.
LOCK TABLE account, child, calendar, calendar_day, chat_record, chat_message, surprise_config, analytics_event
    IN ACCESS EXCLUSIVE MODE;
DO $$
BEGIN
    IF to_regclass('pgops.transfer_changes') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM pgops.transfer_changes) THEN
            RAISE EXCEPTION 'legacy writes were captured after the validation and are not in v2 yet'
                USING HINT = 'run invoke db.transfer --db advent --resume, then invoke db.validate --db advent';
        END IF;
    END IF;
END
$$;
DROP TABLE analytics_event;
DROP TABLE surprise_config;
DROP TABLE chat_message;
DROP TABLE chat_record;
DROP TABLE calendar_day;
DROP TABLE calendar;
DROP TABLE child;
DROP TABLE account;
