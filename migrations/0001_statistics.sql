-- The statistics schema, shared by the embedded SQLite store and Postgres.
-- Every row holds absolute values keyed by (entity, period): writing a row
-- twice changes nothing. Times are milliseconds since the Unix epoch, UTC;
-- periods are half-open, [start, end).

-- One final presence bucket per webinar (DESIGN §3).
CREATE TABLE presence_buckets (
    webinar_id      TEXT             NOT NULL,
    bucket_start    BIGINT           NOT NULL,
    bucket_end      BIGINT           NOT NULL,
    min_concurrent  BIGINT           NOT NULL,
    max_concurrent  BIGINT           NOT NULL,
    -- live_ms / (bucket_end - bucket_start), rounded to three decimals
    avg_concurrent  DOUBLE PRECISION NOT NULL,
    -- the exact sum of live(k) over the bucket's milliseconds
    live_ms         BIGINT           NOT NULL,
    unique_viewers  BIGINT           NOT NULL,
    pings           BIGINT           NOT NULL,
    joins           BIGINT           NOT NULL,
    leaves          BIGINT           NOT NULL,
    expiries        BIGINT           NOT NULL,
    PRIMARY KEY (webinar_id, bucket_start)
);

-- Distinct viewers of a webinar per hour (period '1h', UTC hours) and per
-- calendar day in stats.timezone (period '1d'): unique viewers do not add up
-- across buckets, so coarser intervals read them from here.
CREATE TABLE presence_rollups (
    webinar_id      TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    period_start    BIGINT  NOT NULL,
    period_end      BIGINT  NOT NULL,
    unique_viewers  BIGINT  NOT NULL,
    PRIMARY KEY (webinar_id, period, period_start)
);

-- Webinar engagement per bucket and kind (chat, question, poll, download,
-- form, giveaway, cta).
CREATE TABLE activity_buckets (
    webinar_id      TEXT    NOT NULL,
    bucket_start    BIGINT  NOT NULL,
    bucket_end      BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    events          BIGINT  NOT NULL,
    PRIMARY KEY (webinar_id, bucket_start, kind)
);

-- How far each source's events are reflected in the rows above, written in
-- the same transaction as the rows.
CREATE TABLE source_positions (
    source          TEXT    NOT NULL PRIMARY KEY,
    position        TEXT    NOT NULL,
    updated_at      BIGINT  NOT NULL
);
