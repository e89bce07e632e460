DROP TABLE memory_embedding;
DROP TABLE memory_fragment;
DROP TABLE chat_message_v2;
DROP TABLE chat_session_v2;
