-- Production schema, version 3: friend applications, blacklists, pinned friends, and
-- conversations' message-destruction settings.
ALTER TABLE friends ADD COLUMN is_pinned BOOLEAN NOT NULL DEFAULT FALSE;

-- Who has a user as a friend (their lists show the user's profile).
ALTER TABLE friends ADD INDEX friends_by_friend (friend_user_id);

CREATE TABLE IF NOT EXISTS friend_requests (
    from_user_id VARCHAR(64) NOT NULL,
    to_user_id VARCHAR(64) NOT NULL,
    handle_result INT NOT NULL DEFAULT 0,
    req_msg VARCHAR(1024) NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    handler_user_id VARCHAR(64) NOT NULL DEFAULT '',
    handle_msg VARCHAR(1024) NOT NULL DEFAULT '',
    handle_time BIGINT NOT NULL DEFAULT 0,
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (from_user_id, to_user_id),
    INDEX friend_requests_to (to_user_id, create_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS blacks (
    owner_user_id VARCHAR(64) NOT NULL,
    block_user_id VARCHAR(64) NOT NULL,
    create_time BIGINT NOT NULL,
    add_source INT NOT NULL DEFAULT 0,
    operator_user_id VARCHAR(64) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, block_user_id)
) ENGINE = InnoDB;

ALTER TABLE conversations ADD COLUMN msg_destruct_time BIGINT NOT NULL DEFAULT 604800;
ALTER TABLE conversations ADD COLUMN is_msg_destruct BOOLEAN NOT NULL DEFAULT FALSE;
