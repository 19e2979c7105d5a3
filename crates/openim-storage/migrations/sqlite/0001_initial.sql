-- Embedded (SQLite) schema, version 1.
CREATE TABLE users (
    user_id TEXT PRIMARY KEY NOT NULL,
    nickname TEXT NOT NULL DEFAULT '',
    face_url TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '',
    app_manger_level INTEGER NOT NULL DEFAULT 0,
    global_recv_msg_opt INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL
);
CREATE INDEX users_by_create_time ON users (create_time, user_id);

CREATE TABLE friends (
    owner_user_id TEXT NOT NULL,
    friend_user_id TEXT NOT NULL,
    remark TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    add_source INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, friend_user_id)
);

CREATE TABLE groups (
    group_id TEXT PRIMARY KEY NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    notification TEXT NOT NULL DEFAULT '',
    introduction TEXT NOT NULL DEFAULT '',
    face_url TEXT NOT NULL DEFAULT '',
    owner_user_id TEXT NOT NULL DEFAULT '',
    creator_user_id TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    ex TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL DEFAULT 0,
    group_type INTEGER NOT NULL DEFAULT 2,
    need_verification INTEGER NOT NULL DEFAULT 0,
    look_member_info INTEGER NOT NULL DEFAULT 0,
    apply_member_friend INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_level INTEGER NOT NULL DEFAULT 20,
    join_time INTEGER NOT NULL,
    nickname TEXT NOT NULL DEFAULT '',
    face_url TEXT NOT NULL DEFAULT '',
    join_source INTEGER NOT NULL DEFAULT 0,
    inviter_user_id TEXT NOT NULL DEFAULT '',
    operator_user_id TEXT NOT NULL DEFAULT '',
    mute_end_time INTEGER NOT NULL DEFAULT 0,
    ex TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE conversations (
    owner_user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    conversation_type INTEGER NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    group_id TEXT NOT NULL DEFAULT '',
    recv_msg_opt INTEGER NOT NULL DEFAULT 0,
    is_pinned INTEGER NOT NULL DEFAULT 0,
    is_private_chat INTEGER NOT NULL DEFAULT 0,
    burn_duration INTEGER NOT NULL DEFAULT 0,
    group_at_type INTEGER NOT NULL DEFAULT 0,
    attached_info TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '',
    min_seq INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_user_id, conversation_id)
);

CREATE TABLE seqs (
    conversation_id TEXT PRIMARY KEY NOT NULL,
    max_seq INTEGER NOT NULL
);

CREATE TABLE read_seqs (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE messages (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    client_msg_id TEXT NOT NULL,
    send_time INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (conversation_id, client_msg_id);
CREATE INDEX messages_by_send_time ON messages (send_time);

CREATE TABLE tokens (
    user_id TEXT NOT NULL,
    platform_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    state INTEGER NOT NULL,
    expire_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, platform_id, token)
);
