-- Embedded schema, version 5: per-user command lists (favourites and the like) and presence
-- subscriptions made over REST.
CREATE TABLE user_commands (
    user_id TEXT NOT NULL,
    command_type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    value TEXT NOT NULL,
    ex TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    PRIMARY KEY (user_id, command_type, uuid)
);

CREATE TABLE user_subscriptions (
    user_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (user_id, target_user_id)
);
