-- Production schema, version 5: the group lifecycle (applications, announcements) and the
-- version logs the SDK's incremental sync of group members and joined groups reads.
ALTER TABLE `groups` ADD COLUMN notification_update_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE `groups` ADD COLUMN notification_user_id VARCHAR(64) NOT NULL DEFAULT '';

-- Who manages a group: owner and admins, found from the user.
ALTER TABLE group_members ADD INDEX group_members_by_role (user_id, role_level);

-- Applications to join a group (and invitations that need approval); one per (group, user).
CREATE TABLE IF NOT EXISTS group_requests (
    group_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    handle_result INT NOT NULL DEFAULT 0,
    req_msg VARCHAR(1024) NOT NULL DEFAULT '',
    handle_msg VARCHAR(1024) NOT NULL DEFAULT '',
    req_time BIGINT NOT NULL,
    handle_user_id VARCHAR(64) NOT NULL DEFAULT '',
    handle_time BIGINT NOT NULL DEFAULT 0,
    join_source INT NOT NULL DEFAULT 0,
    inviter_user_id VARCHAR(64) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id),
    INDEX group_requests_by_group (group_id, req_time),
    INDEX group_requests_by_user (user_id, req_time)
) ENGINE = InnoDB;

-- A version log per (kind, owner): its current version, and the version at which each entry
-- last changed. Kinds: 1 a group's members (owner: the group), 2 a user's joined groups (owner:
-- the user). `version_id` changes when a log starts over, so a client holding another one
-- syncs in full.
CREATE TABLE IF NOT EXISTS version_heads (
    kind INT NOT NULL,
    owner_id VARCHAR(64) NOT NULL,
    version_id VARCHAR(32) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (kind, owner_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS version_entries (
    kind INT NOT NULL,
    owner_id VARCHAR(64) NOT NULL,
    entry_id VARCHAR(64) NOT NULL,
    state INT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (kind, owner_id, entry_id),
    INDEX version_entries_since (kind, owner_id, version)
) ENGINE = InnoDB;
