DROP TABLE audit_log;
DROP TABLE analytics_events;
