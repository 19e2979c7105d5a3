-- Embedded schema, version 2: a bus and an online registry in the database, so that services
-- running as separate processes on one host can share them.
CREATE TABLE bus_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX bus_records_by_topic ON bus_records (topic, id);

CREATE TABLE bus_offsets (
    topic TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (topic, consumer_group)
);

CREATE TABLE online (
    user_id TEXT NOT NULL,
    platform_id INTEGER NOT NULL,
    gateway_id TEXT NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (user_id, platform_id, gateway_id)
);
