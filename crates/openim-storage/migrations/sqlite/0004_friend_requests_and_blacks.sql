-- Embedded schema, version 4: friend applications, blacklists, pinned friends, and
-- conversations' message-destruction settings.
ALTER TABLE friends ADD COLUMN is_pinned BOOLEAN NOT NULL DEFAULT FALSE;

-- Who has a user as a friend (their lists show the user's profile).
CREATE INDEX friends_by_friend ON friends (friend_user_id);

CREATE TABLE friend_requests (
    from_user_id TEXT NOT NULL,
    to_user_id TEXT NOT NULL,
    handle_result INTEGER NOT NULL DEFAULT 0,
    req_msg TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    handler_user_id TEXT NOT NULL DEFAULT '',
    handle_msg TEXT NOT NULL DEFAULT '',
    handle_time INTEGER NOT NULL DEFAULT 0,
    ex TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (from_user_id, to_user_id)
);
CREATE INDEX friend_requests_to ON friend_requests (to_user_id, create_time);

CREATE TABLE blacks (
    owner_user_id TEXT NOT NULL,
    block_user_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    add_source INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, block_user_id)
);

ALTER TABLE conversations ADD COLUMN msg_destruct_time INTEGER NOT NULL DEFAULT 604800;
ALTER TABLE conversations ADD COLUMN is_msg_destruct BOOLEAN NOT NULL DEFAULT FALSE;
