DROP TABLE testing_sessions;
DROP TABLE feedback_submissions;
DROP TABLE beta_users;
