-- Campaign statistics (DESIGN §4): per local day of stats.timezone
-- ('YYYY-MM-DD'), absolute values keyed by (client, entity, day), rewritten
-- while the day is open. Distinct sessions do not add up across days, so
-- every day row also keeps its sessions as a serialized roaring bitmap
-- (portable format) of the client's session numbers (campaign_sessions):
-- the distinct sessions of a range are the size of the union of its days'
-- bitmaps, exactly.

-- One campaign of a client on one day.
CREATE TABLE campaign_days (
    client_id          TEXT    NOT NULL,
    campaign_id        TEXT    NOT NULL,
    day                TEXT    NOT NULL,
    -- distinct sessions with a non-bot visit
    visits             BIGINT  NOT NULL,
    -- counted conversions naming the campaign
    conversions        BIGINT  NOT NULL,
    bot_visits         BIGINT  NOT NULL,
    -- page views naming the client and the campaign, and those whose
    -- session visited the campaign the same day
    pageviews          BIGINT  NOT NULL,
    covered_pageviews  BIGINT  NOT NULL,
    sessions           BYTEA   NOT NULL,
    PRIMARY KEY (client_id, campaign_id, day)
);

-- A client's day over all its campaigns.
CREATE TABLE client_days (
    client_id      TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    visits         BIGINT  NOT NULL,
    -- distinct sessions with a non-bot visit carrying a link
    link_visits    BIGINT  NOT NULL,
    conversions    BIGINT  NOT NULL,
    sessions       BYTEA   NOT NULL,
    link_sessions  BYTEA   NOT NULL,
    -- webinars named on the day's non-bot visits and counted conversions,
    -- comma-separated in order
    webinars       TEXT    NOT NULL,
    PRIMARY KEY (client_id, day)
);

-- A marketing link of a client on one day: visits carrying it, and
-- conversions attributed to it.
CREATE TABLE link_days (
    client_id    TEXT    NOT NULL,
    link_id      TEXT    NOT NULL,
    day          TEXT    NOT NULL,
    visits       BIGINT  NOT NULL,
    conversions  BIGINT  NOT NULL,
    sessions     BYTEA   NOT NULL,
    PRIMARY KEY (client_id, link_id, day)
);

-- Page views naming a client, per path and day.
CREATE TABLE pageview_days (
    client_id  TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    pageviews  BIGINT  NOT NULL,
    PRIMARY KEY (client_id, day, path)
);

-- Every counted conversion (the first with its client and entry_id) with
-- the attribution decided when it was applied.
CREATE TABLE campaign_conversions (
    client_id     TEXT     NOT NULL,
    entry_id      TEXT     NOT NULL,
    campaign_id   TEXT     NOT NULL,
    day           TEXT     NOT NULL,
    ts            BIGINT   NOT NULL,
    -- own, session, link or none
    attribution   TEXT     NOT NULL,
    utm_source    TEXT,
    utm_medium    TEXT,
    utm_campaign  TEXT,
    link_id       TEXT,
    webinar_id    TEXT,
    session_id    TEXT,
    -- the session had a non-bot visit of the client in the window before it
    visit_before  BOOLEAN  NOT NULL,
    PRIMARY KEY (client_id, entry_id)
);
CREATE INDEX campaign_conversions_by_day ON campaign_conversions (client_id, day);

-- Each `eventflow restore` into this store; a service absorbs restored
-- rows it does not hold when it starts after one.
CREATE TABLE campaign_restores (
    id           BIGINT  NOT NULL PRIMARY KEY,
    finished_at  BIGINT  NOT NULL
);

-- The number of each session in its client's bitmaps.
CREATE TABLE campaign_sessions (
    client_id   TEXT    NOT NULL,
    number      BIGINT  NOT NULL,
    session_id  TEXT    NOT NULL,
    PRIMARY KEY (client_id, number)
);
