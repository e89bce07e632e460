-- pgops:destructive
DROP TABLE notifications;
DROP TABLE message_reactions;
DROP TABLE messages;
DROP TABLE conversation_participants;
DROP TABLE conversations;
