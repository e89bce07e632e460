DROP TABLE user_engagement;
DROP TABLE chat_analytics;
DROP TABLE day_analytics;
DROP TABLE calendar_analytics;
