-- Embedded schema, version 3: revoke and delete marks, kept beside the messages (which stay
-- unchanged).
CREATE TABLE message_revokes (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    nickname TEXT NOT NULL,
    revoke_time INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE message_deletes (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq, user_id)
);
