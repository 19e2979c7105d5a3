-- Embedded schema, version 7: named objects (pictures, voice, video, files, client logs). A
-- name (`<owner>/…`) points at stored content; uploads of the same content share one key.
CREATE TABLE objects (
    name TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    object_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL DEFAULT '',
    object_group TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL
);
CREATE INDEX objects_key ON objects (object_key);
CREATE INDEX objects_group_time ON objects (object_group, create_time);
