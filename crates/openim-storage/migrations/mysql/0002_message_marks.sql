-- Version 2: revoke and delete marks, kept beside the messages (which stay unchanged).
CREATE TABLE IF NOT EXISTS message_revokes (
    conversation_id VARCHAR(160) NOT NULL,
    seq BIGINT NOT NULL,
    role INT NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    nickname VARCHAR(255) NOT NULL,
    revoke_time BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS message_deletes (
    conversation_id VARCHAR(160) NOT NULL,
    seq BIGINT NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (conversation_id, seq, user_id)
) ENGINE = InnoDB;
