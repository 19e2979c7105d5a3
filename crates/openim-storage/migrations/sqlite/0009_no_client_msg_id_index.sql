-- Embedded schema, version 9: no unique (conversation, clientMsgID) index. Its entries land
-- wherever a clientMsgID falls, so every insert changed a page of it of its own: about half of
-- the writer's time and WAL. The transfer finds a replayed message by its send time instead, in
-- an index that only grows at its end and answers that lookup by itself (ARCHITECTURE.md).
DROP INDEX messages_by_client_id;
DROP INDEX messages_by_send_time;
CREATE INDEX messages_by_time ON messages (send_time, conversation_id, seq, client_msg_id);
