-- Embedded schema, version 8: FCM tokens by (account, platform), app badges, and the client logs
-- apps upload (`/third/*`).
CREATE TABLE fcm_tokens (
    account TEXT NOT NULL,
    platform_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    expire_time INTEGER NOT NULL,
    PRIMARY KEY (account, platform_id)
);

CREATE TABLE app_badges (
    user_id TEXT NOT NULL PRIMARY KEY,
    unread_count INTEGER NOT NULL
);

CREATE TABLE client_logs (
    log_id TEXT NOT NULL PRIMARY KEY,
    platform TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    url TEXT NOT NULL,
    file_name TEXT NOT NULL DEFAULT '',
    system_type TEXT NOT NULL DEFAULT '',
    app_framework TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT ''
);
CREATE INDEX client_logs_time ON client_logs (create_time);
