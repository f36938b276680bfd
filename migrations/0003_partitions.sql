-- Partition ownership (DESIGN §8). Each partition of a stream has a
-- fencing token: the revision of the lease its current owner holds. Every
-- transaction an owner writes raises the token to its own and is refused
-- when the stored one is newer, so a stalled former owner can never
-- overwrite a newer owner's rows or checkpoint.
CREATE TABLE partition_fences (
    -- '<stream>.p<n>'
    name   TEXT    PRIMARY KEY,
    token  BIGINT  NOT NULL
);

-- A partition's engine state and the stream sequence it reflects, where
-- any instance can read it when it takes the partition over.
CREATE TABLE partition_checkpoints (
    name      TEXT    PRIMARY KEY,
    position  TEXT    NOT NULL,
    token     BIGINT  NOT NULL,
    state     BYTEA   NOT NULL,
    saved_at  BIGINT  NOT NULL
);
