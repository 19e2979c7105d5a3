-- Production schema, version 4: per-user command lists (favourites and the like) and presence
-- subscriptions made over REST.
CREATE TABLE IF NOT EXISTS user_commands (
    user_id VARCHAR(64) NOT NULL,
    command_type INT NOT NULL,
    uuid VARCHAR(128) NOT NULL,
    value TEXT NOT NULL,
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    PRIMARY KEY (user_id, command_type, uuid)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS user_subscriptions (
    user_id VARCHAR(64) NOT NULL,
    target_user_id VARCHAR(64) NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_user_id)
) ENGINE = InnoDB;
