DROP TABLE account_session;
DROP TABLE account_v2;
