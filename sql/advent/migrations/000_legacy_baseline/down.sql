DROP TABLE analytics_event;
DROP TABLE surprise_config;
DROP TABLE chat_message;
DROP TABLE chat_record;
DROP TABLE calendar_day;
DROP TABLE calendar;
DROP TABLE child;
DROP TABLE account;
