-- Production (MySQL 8 / MariaDB 10.11+) schema, version 1. Same tables and columns as the
-- embedded SQLite schema so both adapters run the same statements. Tables take the database's
-- collation, which the server creates case-sensitive (see `MySqlStore::migrate`).
CREATE TABLE IF NOT EXISTS users (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    nickname VARCHAR(255) NOT NULL DEFAULT '',
    face_url VARCHAR(1024) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    app_manger_level INT NOT NULL DEFAULT 0,
    global_recv_msg_opt INT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL,
    INDEX users_by_create_time (create_time, user_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS friends (
    owner_user_id VARCHAR(64) NOT NULL,
    friend_user_id VARCHAR(64) NOT NULL,
    remark VARCHAR(255) NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    add_source INT NOT NULL DEFAULT 0,
    operator_user_id VARCHAR(64) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, friend_user_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS `groups` (
    group_id VARCHAR(64) NOT NULL PRIMARY KEY,
    group_name VARCHAR(255) NOT NULL DEFAULT '',
    notification VARCHAR(2048) NOT NULL DEFAULT '',
    introduction VARCHAR(2048) NOT NULL DEFAULT '',
    face_url VARCHAR(1024) NOT NULL DEFAULT '',
    owner_user_id VARCHAR(64) NOT NULL DEFAULT '',
    creator_user_id VARCHAR(64) NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    status INT NOT NULL DEFAULT 0,
    group_type INT NOT NULL DEFAULT 2,
    need_verification INT NOT NULL DEFAULT 0,
    look_member_info INT NOT NULL DEFAULT 0,
    apply_member_friend INT NOT NULL DEFAULT 0
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS group_members (
    group_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    role_level INT NOT NULL DEFAULT 20,
    join_time BIGINT NOT NULL,
    nickname VARCHAR(255) NOT NULL DEFAULT '',
    face_url VARCHAR(1024) NOT NULL DEFAULT '',
    join_source INT NOT NULL DEFAULT 0,
    inviter_user_id VARCHAR(64) NOT NULL DEFAULT '',
    operator_user_id VARCHAR(64) NOT NULL DEFAULT '',
    mute_end_time BIGINT NOT NULL DEFAULT 0,
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id),
    INDEX group_members_by_join (group_id, join_time, user_id),
    INDEX group_members_by_user (user_id, join_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS conversations (
    owner_user_id VARCHAR(64) NOT NULL,
    conversation_id VARCHAR(160) NOT NULL,
    conversation_type INT NOT NULL,
    user_id VARCHAR(64) NOT NULL DEFAULT '',
    group_id VARCHAR(64) NOT NULL DEFAULT '',
    recv_msg_opt INT NOT NULL DEFAULT 0,
    is_pinned BOOLEAN NOT NULL DEFAULT FALSE,
    is_private_chat BOOLEAN NOT NULL DEFAULT FALSE,
    burn_duration INT NOT NULL DEFAULT 0,
    group_at_type INT NOT NULL DEFAULT 0,
    attached_info VARCHAR(2048) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    min_seq BIGINT NOT NULL DEFAULT 0,
    create_time BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_user_id, conversation_id)
) ENGINE = InnoDB;

-- The durable high-water mark of each conversation's seqs. With Redis in front, Redis hands
-- out seqs and reserves them here in blocks, so this is never behind what Redis gave out.
CREATE TABLE IF NOT EXISTS seqs (
    conversation_id VARCHAR(160) NOT NULL PRIMARY KEY,
    max_seq BIGINT NOT NULL
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS read_seqs (
    user_id VARCHAR(64) NOT NULL,
    conversation_id VARCHAR(160) NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) ENGINE = InnoDB;

-- The SQL message store, for operators without MongoDB.
CREATE TABLE IF NOT EXISTS messages (
    conversation_id VARCHAR(160) NOT NULL,
    seq BIGINT NOT NULL,
    client_msg_id VARCHAR(64) NOT NULL,
    send_time BIGINT NOT NULL,
    data MEDIUMBLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE INDEX messages_by_client_id (conversation_id, client_msg_id),
    INDEX messages_by_send_time (send_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS tokens (
    user_id VARCHAR(64) NOT NULL,
    platform_id INT NOT NULL,
    token VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    state INT NOT NULL,
    expire_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, platform_id, token)
) ENGINE = InnoDB;
