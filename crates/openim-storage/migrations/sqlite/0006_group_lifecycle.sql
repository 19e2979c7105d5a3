-- Embedded schema, version 6: the group lifecycle (applications, announcements) and the
-- version logs of group members and joined groups (see the MySQL migration for the model).
ALTER TABLE groups ADD COLUMN notification_update_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN notification_user_id TEXT NOT NULL DEFAULT '';

CREATE INDEX group_members_by_role ON group_members (user_id, role_level);

CREATE TABLE group_requests (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    handle_result INTEGER NOT NULL DEFAULT 0,
    req_msg TEXT NOT NULL DEFAULT '',
    handle_msg TEXT NOT NULL DEFAULT '',
    req_time INTEGER NOT NULL,
    handle_user_id TEXT NOT NULL DEFAULT '',
    handle_time INTEGER NOT NULL DEFAULT 0,
    join_source INTEGER NOT NULL DEFAULT 0,
    inviter_user_id TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_requests_by_group ON group_requests (group_id, req_time);
CREATE INDEX group_requests_by_user ON group_requests (user_id, req_time);

CREATE TABLE version_heads (
    kind INTEGER NOT NULL,
    owner_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, owner_id)
);

CREATE TABLE version_entries (
    kind INTEGER NOT NULL,
    owner_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, owner_id, entry_id)
);
CREATE INDEX version_entries_since ON version_entries (kind, owner_id, version);
