-- Production schema, version 7: FCM tokens by (account, platform), app badges, and the client logs
-- apps upload (`/third/*`).
CREATE TABLE IF NOT EXISTS fcm_tokens (
    account VARCHAR(64) NOT NULL,
    platform_id INT NOT NULL,
    token VARCHAR(1024) NOT NULL,
    expire_time BIGINT NOT NULL,
    PRIMARY KEY (account, platform_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS app_badges (
    user_id VARCHAR(64) NOT NULL,
    unread_count INT NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS client_logs (
    log_id VARCHAR(32) NOT NULL,
    platform VARCHAR(32) NOT NULL DEFAULT '',
    user_id VARCHAR(64) NOT NULL,
    create_time BIGINT NOT NULL,
    url VARCHAR(2048) NOT NULL,
    file_name VARCHAR(255) NOT NULL DEFAULT '',
    system_type VARCHAR(64) NOT NULL DEFAULT '',
    app_framework VARCHAR(64) NOT NULL DEFAULT '',
    version VARCHAR(64) NOT NULL DEFAULT '',
    ex VARCHAR(2048) NOT NULL DEFAULT '',
    PRIMARY KEY (log_id),
    INDEX client_logs_time (create_time)
) ENGINE = InnoDB;
