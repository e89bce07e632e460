DROP TABLE vocabulary_items;
DROP TABLE learning_sessions;
DROP TABLE descriptions;
DROP TABLE images;
DROP TABLE users;
