DROP TABLE productivity_insights;
DROP TABLE energy_logs;
DROP TABLE user_analytics;
