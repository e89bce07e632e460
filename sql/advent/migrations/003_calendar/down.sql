DROP TABLE calendar_day_v2;
DROP TABLE advent_calendar_v2;
