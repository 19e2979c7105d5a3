-- Production schema, version 6: named objects (pictures, voice, video, files, client logs). A
-- name (`<owner>/…`) points at stored content; uploads of the same content share one key.
CREATE TABLE IF NOT EXISTS objects (
    name VARCHAR(768) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL,
    object_key VARCHAR(512) NOT NULL,
    size BIGINT NOT NULL,
    content_type VARCHAR(255) NOT NULL DEFAULT '',
    object_group VARCHAR(64) NOT NULL DEFAULT '',
    create_time BIGINT NOT NULL,
    PRIMARY KEY (name),
    INDEX objects_key (object_key),
    INDEX objects_group_time (object_group, create_time)
) ENGINE = InnoDB;
