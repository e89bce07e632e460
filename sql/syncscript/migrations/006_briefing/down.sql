DROP TABLE briefing_history;
DROP TABLE briefing_settings;
