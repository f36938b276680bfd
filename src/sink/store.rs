//! The statistics store: final buckets, rollups and source positions in SQL.
//!
//! One schema (`migrations/`) serves the embedded SQLite file and Postgres,
//! through sqlx's runtime-chosen `Any` driver; the URL picks the database.
//! Every write is a transaction of idempotent upserts of absolute values
//! together with the source position they reflect, so writing a batch twice
//! changes nothing and rows never run ahead of or behind their position.
//! A partition's owner (DESIGN §8) writes under a fencing token, and keeps
//! its checkpoint here where any instance can take it over.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::engine::campaign::CampaignRows;
use crate::engine::{ActivityBucket, PresenceBucket, PresenceStats, RollupBucket};
use crate::event::ActivityKind;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// What one flush writes, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub presence: Vec<PresenceBucket>,
    pub rollups: Vec<RollupBucket>,
    pub activity: Vec<ActivityBucket>,
    pub campaigns: CampaignRows,
    /// The source and the position these rows reflect.
    pub position: Option<(String, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.presence.is_empty()
            && self.rollups.is_empty()
            && self.activity.is_empty()
            && self.campaigns.is_empty()
            && self.position.is_none()
    }

    /// Everything the engine emitted and its changed campaign rows, as
    /// `restore` and replays of whole logs write them.
    pub fn drained_from(engine: &mut crate::engine::Engine) -> Batch {
        use crate::engine::Output;
        let mut batch = Batch::default();
        for out in engine.drain() {
            match out {
                Output::Presence(b) => batch.presence.push(b),
                Output::Activity(a) => batch.activity.push(a),
                Output::Rollup(r) => batch.rollups.push(r),
            }
        }
        batch.campaigns = engine.take_campaign_rows();
        batch
    }

    pub fn rows(&self) -> usize {
        self.presence.len() + self.rollups.len() + self.activity.len() + self.campaigns.rows()
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    sqlite: bool,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`).
    pub async fn connect(url: &str) -> Result<Store, sqlx::Error> {
        let sqlite = url.starts_with("sqlite:");
        let pool = Self::options(sqlite).connect(url).await?;
        Ok(Store { pool, sqlite })
    }

    /// A store whose connections are made when first needed, so a service
    /// can start while the database is down. Fails only on a bad URL.
    pub fn lazy(url: &str) -> Result<Store, sqlx::Error> {
        let sqlite = url.starts_with("sqlite:");
        let pool = Self::options(sqlite).connect_lazy(url)?;
        Ok(Store { pool, sqlite })
    }

    fn options(sqlite: bool) -> AnyPoolOptions {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            // SQLite has one writer; one connection keeps it simple and fast.
            .max_connections(if sqlite { 1 } else { 8 })
            // A store that does not answer is reported (and retried) soon.
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // FULL: a committed flush survives power loss, so a
                        // checkpoint written after it never runs ahead.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    } else {
                        // A writer that stalls inside a transaction (a
                        // process stopped, not dead: its socket stays open)
                        // would hold its row locks, and a partition's new
                        // owner would wait on them for as long: the server
                        // ends such a transaction after this.
                        conn.execute("SET idle_in_transaction_session_timeout = '5s'")
                            .await?;
                    }
                    Ok(())
                })
            })
    }

    /// The embedded store in `data_dir`.
    pub async fn embedded(data_dir: &std::path::Path) -> Result<Store, sqlx::Error> {
        std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
        let path = data_dir.join("eventflow.db");
        Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// Applies the migrations not yet applied.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Runs one statement outside the schema (creating or dropping a
    /// database, for tests and tools).
    pub async fn execute_admin(&self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(&self.pool).await.map(|_| ())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Writes a batch in one transaction.
    pub async fn write(&self, batch: &Batch, now_ms: i64) -> Result<(), sqlx::Error> {
        match self.write_fenced(batch, now_ms, None).await {
            Ok(()) => Ok(()),
            Err(WriteError::Store(e)) => Err(e),
            Err(fenced @ WriteError::Fenced { .. }) => {
                Err(sqlx::Error::Protocol(fenced.to_string()))
            }
        }
    }

    /// Writes a batch in one transaction that first raises the partition's
    /// fencing token to `fence`'s, and is refused when the stored token is
    /// newer (DESIGN §8: a former owner never overwrites a newer owner).
    pub async fn write_fenced(
        &self,
        batch: &Batch,
        now_ms: i64,
        fence: Option<&Fence>,
    ) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await?;
        if let Some(fence) = fence {
            raise_fence(&mut tx, fence).await?;
        }
        for b in &batch.presence {
            let s = &b.stats;
            sqlx::query(
                "INSERT INTO presence_buckets (webinar_id, bucket_start, bucket_end, min_concurrent, \
                 max_concurrent, avg_concurrent, live_ms, unique_viewers, pings, joins, leaves, expiries) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (webinar_id, bucket_start) DO UPDATE SET bucket_end = excluded.bucket_end, \
                 min_concurrent = excluded.min_concurrent, max_concurrent = excluded.max_concurrent, \
                 avg_concurrent = excluded.avg_concurrent, live_ms = excluded.live_ms, \
                 unique_viewers = excluded.unique_viewers, pings = excluded.pings, joins = excluded.joins, \
                 leaves = excluded.leaves, expiries = excluded.expiries",
            )
            .bind(&*b.webinar_id)
            .bind(s.bucket_start)
            .bind(s.bucket_end)
            .bind(i64::from(s.min_concurrent))
            .bind(i64::from(s.max_concurrent))
            .bind(s.avg_concurrent())
            .bind(s.live_ms as i64)
            .bind(i64::from(s.unique_viewers))
            .bind(i64::from(s.pings))
            .bind(i64::from(s.joins))
            .bind(i64::from(s.leaves))
            .bind(i64::from(s.expiries))
            .execute(&mut *tx)
            .await?;
        }
        for r in &batch.rollups {
            sqlx::query(
                "INSERT INTO presence_rollups (webinar_id, period, period_start, period_end, unique_viewers) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webinar_id, period, period_start) DO UPDATE SET \
                 period_end = excluded.period_end, unique_viewers = excluded.unique_viewers",
            )
            .bind(&*r.webinar_id)
            .bind(r.period.as_str())
            .bind(r.start)
            .bind(r.end)
            .bind(i64::from(r.unique_viewers))
            .execute(&mut *tx)
            .await?;
        }
        for a in &batch.activity {
            for kind in ActivityKind::ALL {
                let events = a.counts[kind.index()];
                if events == 0 {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO activity_buckets (webinar_id, bucket_start, bucket_end, kind, events) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webinar_id, bucket_start, kind) DO UPDATE SET \
                     bucket_end = excluded.bucket_end, events = excluded.events",
                )
                .bind(&*a.webinar_id)
                .bind(a.bucket_start)
                .bind(a.bucket_end)
                .bind(kind.as_str())
                .bind(i64::from(events))
                .execute(&mut *tx)
                .await?;
            }
        }
        write_campaigns(&mut tx, &batch.campaigns).await?;
        if let Some((source, position)) = &batch.position {
            sqlx::query(
                "INSERT INTO source_positions (source, position, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            )
            .bind(source.as_str())
            .bind(position.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Final presence buckets of a webinar starting in `[from, to)`, in order.
    pub async fn presence_buckets(
        &self,
        webinar_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<PresenceStats>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT bucket_start, bucket_end, min_concurrent, max_concurrent, live_ms, unique_viewers, \
             pings, joins, leaves, expiries FROM presence_buckets \
             WHERE webinar_id = $1 AND bucket_start >= $2 AND bucket_start < $3 ORDER BY bucket_start",
        )
        .bind(webinar_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(presence_row).collect()
    }

    /// The latest `n` final presence buckets of a webinar, oldest first.
    pub async fn recent_presence(
        &self,
        webinar_id: &str,
        n: i64,
    ) -> Result<Vec<PresenceStats>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT bucket_start, bucket_end, min_concurrent, max_concurrent, live_ms, unique_viewers, \
             pings, joins, leaves, expiries FROM presence_buckets \
             WHERE webinar_id = $1 ORDER BY bucket_start DESC LIMIT $2",
        )
        .bind(webinar_id)
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<PresenceStats> =
            rows.iter().map(presence_row).collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Distinct-viewer rollups of a webinar for `period` starting in `[from, to)`.
    pub async fn rollups(
        &self,
        webinar_id: &str,
        period: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64, u32)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT period_start, period_end, unique_viewers FROM presence_rollups \
             WHERE webinar_id = $1 AND period = $2 AND period_start >= $3 AND period_start < $4 ORDER BY period_start",
        )
        .bind(webinar_id)
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? as u32)))
            .collect()
    }

    /// Engagement of a webinar by kind over buckets starting in `[from, to)`.
    pub async fn activity(
        &self,
        webinar_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, u64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT kind, CAST(SUM(events) AS BIGINT) FROM activity_buckets \
             WHERE webinar_id = $1 AND bucket_start >= $2 AND bucket_start < $3 GROUP BY kind ORDER BY kind",
        )
        .bind(webinar_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64)))
            .collect()
    }

    /// Every final presence bucket, ordered by webinar, then bucket start
    /// (for comparisons and exports).
    pub async fn all_presence(&self) -> Result<Vec<(String, PresenceStats)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT bucket_start, bucket_end, min_concurrent, max_concurrent, live_ms, unique_viewers, \
             pings, joins, leaves, expiries, webinar_id FROM presence_buckets ORDER BY webinar_id, bucket_start",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(10)?, presence_row(r)?)))
            .collect()
    }

    /// Final presence buckets starting at or after `since`, every webinar.
    pub async fn presence_since(
        &self,
        since: i64,
    ) -> Result<Vec<(std::sync::Arc<str>, PresenceStats)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT bucket_start, bucket_end, min_concurrent, max_concurrent, live_ms, unique_viewers, \
             pings, joins, leaves, expiries, webinar_id FROM presence_buckets WHERE bucket_start >= $1 \
             ORDER BY webinar_id, bucket_start",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(10)?.into(), presence_row(r)?)))
            .collect()
    }

    /// The latest `eventflow restore` into this store (0: none).
    pub async fn campaign_restore_id(&self) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM campaign_restores")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)
    }

    /// Records a finished restore; returns its number.
    pub async fn record_campaign_restore(&self, now_ms: i64) -> Result<i64, sqlx::Error> {
        let id = self.campaign_restore_id().await? + 1;
        sqlx::query("INSERT INTO campaign_restores (id, finished_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Every campaign row, as the engine takes them in
    /// ([`Engine::absorb_restored`](crate::engine::Engine::absorb_restored));
    /// sessions in client and number order.
    pub async fn campaign_rows(&self) -> Result<CampaignRows, sqlx::Error> {
        use crate::engine::campaign::{
            CampaignDayRow, ClientDayRow, ConversionRow, LinkDayRow, PathDayRow, SessionRow,
        };
        let date = |s: String| -> Result<jiff::civil::Date, sqlx::Error> {
            s.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
        };
        let n = |r: &AnyRow, i: usize| -> Result<u64, sqlx::Error> {
            Ok(r.try_get::<i64, _>(i)? as u64)
        };
        let mut rows = CampaignRows::default();
        for r in sqlx::query(
            "SELECT client_id, campaign_id, day, visits, conversions, bot_visits, pageviews, \
             covered_pageviews, sessions FROM campaign_days",
        )
        .fetch_all(&self.pool)
        .await?
        {
            rows.campaign_days.push(CampaignDayRow {
                client_id: r.try_get(0)?,
                campaign_id: r.try_get(1)?,
                day: date(r.try_get(2)?)?,
                visits: n(&r, 3)?,
                conversions: n(&r, 4)?,
                bot_visits: n(&r, 5)?,
                pageviews: n(&r, 6)?,
                covered_pageviews: n(&r, 7)?,
                sessions: r.try_get(8)?,
            });
        }
        for r in sqlx::query(
            "SELECT client_id, day, visits, link_visits, conversions, sessions, link_sessions, webinars \
             FROM client_days",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let webinars: String = r.try_get(7)?;
            rows.client_days.push(ClientDayRow {
                client_id: r.try_get(0)?,
                day: date(r.try_get(1)?)?,
                visits: n(&r, 2)?,
                link_visits: n(&r, 3)?,
                conversions: n(&r, 4)?,
                sessions: r.try_get(5)?,
                link_sessions: r.try_get(6)?,
                webinars: webinars
                    .split(',')
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
        for r in sqlx::query(
            "SELECT client_id, link_id, day, visits, conversions, sessions FROM link_days",
        )
        .fetch_all(&self.pool)
        .await?
        {
            rows.link_days.push(LinkDayRow {
                client_id: r.try_get(0)?,
                link_id: r.try_get(1)?,
                day: date(r.try_get(2)?)?,
                visits: n(&r, 3)?,
                conversions: n(&r, 4)?,
                sessions: r.try_get(5)?,
            });
        }
        for r in sqlx::query("SELECT client_id, day, path, pageviews FROM pageview_days")
            .fetch_all(&self.pool)
            .await?
        {
            rows.path_days.push(PathDayRow {
                client_id: r.try_get(0)?,
                day: date(r.try_get(1)?)?,
                path: r.try_get(2)?,
                pageviews: n(&r, 3)?,
            });
        }
        for r in sqlx::query(
            "SELECT client_id, entry_id, campaign_id, day, ts, attribution, utm_source, utm_medium, \
             utm_campaign, link_id, webinar_id, session_id, CAST(CAST(visit_before AS INTEGER) AS BIGINT) \
             FROM campaign_conversions ORDER BY ts",
        )
        .fetch_all(&self.pool)
        .await?
        {
            rows.conversions.push(ConversionRow {
                client_id: r.try_get(0)?,
                entry_id: r.try_get(1)?,
                campaign_id: r.try_get(2)?,
                day: date(r.try_get(3)?)?,
                ts: r.try_get(4)?,
                attribution: r.try_get(5)?,
                source: r.try_get(6)?,
                medium: r.try_get(7)?,
                campaign: r.try_get(8)?,
                link_id: r.try_get(9)?,
                webinar_id: r.try_get(10)?,
                session_id: r.try_get(11)?,
                visit_before: r.try_get::<i64, _>(12)? != 0,
            });
        }
        for r in sqlx::query(
            "SELECT client_id, number, session_id FROM campaign_sessions ORDER BY client_id, number",
        )
        .fetch_all(&self.pool)
        .await?
        {
            rows.sessions.push(SessionRow {
                client_id: r.try_get(0)?,
                number: r.try_get::<i64, _>(1)? as u32,
                session_id: r.try_get(2)?,
            });
        }
        Ok(rows)
    }

    /// The numbers of a client's sessions, in number order.
    pub async fn campaign_sessions(
        &self,
        client_id: &str,
    ) -> Result<Vec<(u32, String)>, sqlx::Error> {
        sqlx::query(
            "SELECT number, session_id FROM campaign_sessions WHERE client_id = $1 ORDER BY number",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)? as u32, r.try_get(1)?)))
        .collect()
    }

    /// Saves a partition's checkpoint, fenced like its rows.
    pub async fn save_partition_checkpoint(
        &self,
        fence: &Fence,
        position: &str,
        state: &[u8],
        now_ms: i64,
    ) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await?;
        raise_fence(&mut tx, fence).await?;
        sqlx::query(
            "INSERT INTO partition_checkpoints (name, position, token, state, saved_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
             token = excluded.token, state = excluded.state, saved_at = excluded.saved_at",
        )
        .bind(fence.name.as_str())
        .bind(position)
        .bind(fence.token)
        .bind(state)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Raises a partition's fencing token to a new owner's as it takes the
    /// partition over, before it reads the checkpoint: from then on the
    /// former owner can write nothing more.
    pub async fn fence_partition(&self, fence: &Fence) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await?;
        raise_fence(&mut tx, fence).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A partition's last checkpoint: its position and engine state.
    pub async fn partition_checkpoint(
        &self,
        name: &str,
    ) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
        sqlx::query("SELECT position, state FROM partition_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    /// A partition's fencing token: the newest lease revision that wrote.
    pub async fn fence_token(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query("SELECT token FROM partition_fences WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }

    /// The saved position of a source.
    pub async fn position(&self, source: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query("SELECT position FROM source_positions WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }
}

/// A partition's fencing token as its owner writes it: the lease revision
/// (DESIGN §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// `<stream>.p<n>`.
    pub name: String,
    pub token: i64,
}

/// Why a fenced write did not land.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A newer owner has written: this one no longer owns the partition.
    #[error(
        "fenced: {name} was written under lease revision {stored}, newer than this writer's {token}"
    )]
    Fenced {
        name: String,
        token: i64,
        stored: i64,
    },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Raises the partition's token to `fence`'s inside `tx`, or refuses.
async fn raise_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    fence: &Fence,
) -> Result<(), WriteError> {
    let raised = sqlx::query(
        "INSERT INTO partition_fences (name, token) VALUES ($1, $2) ON CONFLICT (name) \
         DO UPDATE SET token = excluded.token WHERE partition_fences.token <= excluded.token",
    )
    .bind(fence.name.as_str())
    .bind(fence.token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if raised == 0 {
        let stored: i64 = sqlx::query("SELECT token FROM partition_fences WHERE name = $1")
            .bind(fence.name.as_str())
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        return Err(WriteError::Fenced {
            name: fence.name.clone(),
            token: fence.token,
            stored,
        });
    }
    Ok(())
}

/// The campaign rows of a batch, inside its transaction.
async fn write_campaigns(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &CampaignRows,
) -> Result<(), sqlx::Error> {
    let count = |n: u64| n as i64;
    for r in &rows.campaign_days {
        sqlx::query(
            "INSERT INTO campaign_days (client_id, campaign_id, day, visits, conversions, bot_visits, \
             pageviews, covered_pageviews, sessions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (client_id, campaign_id, day) DO UPDATE SET visits = excluded.visits, \
             conversions = excluded.conversions, bot_visits = excluded.bot_visits, \
             pageviews = excluded.pageviews, covered_pageviews = excluded.covered_pageviews, \
             sessions = excluded.sessions",
        )
        .bind(&r.client_id)
        .bind(&r.campaign_id)
        .bind(r.day.to_string())
        .bind(count(r.visits))
        .bind(count(r.conversions))
        .bind(count(r.bot_visits))
        .bind(count(r.pageviews))
        .bind(count(r.covered_pageviews))
        .bind(&r.sessions)
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.client_days {
        sqlx::query(
            "INSERT INTO client_days (client_id, day, visits, link_visits, conversions, sessions, \
             link_sessions, webinars) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (client_id, day) \
             DO UPDATE SET visits = excluded.visits, link_visits = excluded.link_visits, \
             conversions = excluded.conversions, sessions = excluded.sessions, \
             link_sessions = excluded.link_sessions, webinars = excluded.webinars",
        )
        .bind(&r.client_id)
        .bind(r.day.to_string())
        .bind(count(r.visits))
        .bind(count(r.link_visits))
        .bind(count(r.conversions))
        .bind(&r.sessions)
        .bind(&r.link_sessions)
        .bind(r.webinars.join(","))
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.link_days {
        sqlx::query(
            "INSERT INTO link_days (client_id, link_id, day, visits, conversions, sessions) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id, link_id, day) DO UPDATE SET \
             visits = excluded.visits, conversions = excluded.conversions, sessions = excluded.sessions",
        )
        .bind(&r.client_id)
        .bind(&r.link_id)
        .bind(r.day.to_string())
        .bind(count(r.visits))
        .bind(count(r.conversions))
        .bind(&r.sessions)
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.path_days {
        sqlx::query(
            "INSERT INTO pageview_days (client_id, day, path, pageviews) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (client_id, day, path) DO UPDATE SET pageviews = excluded.pageviews",
        )
        .bind(&r.client_id)
        .bind(r.day.to_string())
        .bind(&r.path)
        .bind(count(r.pageviews))
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.conversions {
        sqlx::query(
            "INSERT INTO campaign_conversions (client_id, entry_id, campaign_id, day, ts, attribution, \
             utm_source, utm_medium, utm_campaign, link_id, webinar_id, session_id, visit_before) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (client_id, entry_id) DO UPDATE SET campaign_id = excluded.campaign_id, \
             day = excluded.day, ts = excluded.ts, attribution = excluded.attribution, \
             utm_source = excluded.utm_source, utm_medium = excluded.utm_medium, \
             utm_campaign = excluded.utm_campaign, link_id = excluded.link_id, \
             webinar_id = excluded.webinar_id, session_id = excluded.session_id, \
             visit_before = excluded.visit_before",
        )
        .bind(&r.client_id)
        .bind(&r.entry_id)
        .bind(&r.campaign_id)
        .bind(r.day.to_string())
        .bind(r.ts)
        .bind(&r.attribution)
        .bind(r.source.as_deref())
        .bind(r.medium.as_deref())
        .bind(r.campaign.as_deref())
        .bind(r.link_id.as_deref())
        .bind(r.webinar_id.as_deref())
        .bind(r.session_id.as_deref())
        .bind(r.visit_before)
        .execute(&mut **tx)
        .await?;
    }
    for r in &rows.sessions {
        sqlx::query(
            "INSERT INTO campaign_sessions (client_id, number, session_id) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, number) DO UPDATE SET session_id = excluded.session_id",
        )
        .bind(&r.client_id)
        .bind(i64::from(r.number))
        .bind(&r.session_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Every campaign row as one line of text per row, tables in a fixed
    /// order and rows by key, session bitmaps as their session numbers (for
    /// comparisons of whole runs and exports).
    pub async fn campaign_dump(&self) -> Result<Vec<String>, sqlx::Error> {
        let mut out = Vec::new();
        let sessions = |bytes: Vec<u8>| -> Result<String, sqlx::Error> {
            let set = crate::engine::campaign::bitmap_from_bytes(&bytes)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(set
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","))
        };
        for r in sqlx::query(
            "SELECT client_id, campaign_id, day, visits, conversions, bot_visits, pageviews, \
             covered_pageviews, sessions FROM campaign_days ORDER BY client_id, campaign_id, day",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(format!(
                "campaign_days {} {} {} visits={} conversions={} bot_visits={} pageviews={} covered={} sessions=[{}]",
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
                r.try_get::<i64, _>(3)?,
                r.try_get::<i64, _>(4)?,
                r.try_get::<i64, _>(5)?,
                r.try_get::<i64, _>(6)?,
                r.try_get::<i64, _>(7)?,
                sessions(r.try_get(8)?)?,
            ));
        }
        for r in sqlx::query(
            "SELECT client_id, day, visits, link_visits, conversions, sessions, link_sessions, webinars \
             FROM client_days ORDER BY client_id, day",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(format!(
                "client_days {} {} visits={} link_visits={} conversions={} sessions=[{}] link_sessions=[{}] webinars=[{}]",
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<i64, _>(2)?,
                r.try_get::<i64, _>(3)?,
                r.try_get::<i64, _>(4)?,
                sessions(r.try_get(5)?)?,
                sessions(r.try_get(6)?)?,
                r.try_get::<String, _>(7)?,
            ));
        }
        for r in sqlx::query(
            "SELECT client_id, link_id, day, visits, conversions, sessions FROM link_days \
             ORDER BY client_id, link_id, day",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(format!(
                "link_days {} {} {} visits={} conversions={} sessions=[{}]",
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
                r.try_get::<i64, _>(3)?,
                r.try_get::<i64, _>(4)?,
                sessions(r.try_get(5)?)?,
            ));
        }
        for r in sqlx::query(
            "SELECT client_id, day, path, pageviews FROM pageview_days ORDER BY client_id, day, path",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(format!(
                "pageview_days {} {} {} pageviews={}",
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
                r.try_get::<i64, _>(3)?,
            ));
        }
        for r in sqlx::query(
            "SELECT client_id, entry_id, campaign_id, day, ts, attribution, utm_source, utm_medium, \
             utm_campaign, link_id, webinar_id, session_id, CAST(CAST(visit_before AS INTEGER) AS BIGINT) \
             FROM campaign_conversions ORDER BY client_id, entry_id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let opt = |i: usize| -> Result<String, sqlx::Error> {
                Ok(r.try_get::<Option<String>, _>(i)?.unwrap_or_else(|| "-".into()))
            };
            out.push(format!(
                "campaign_conversions {} {} {} {} ts={} {} utm={}/{}/{} link={} webinar={} session={} visit_before={}",
                r.try_get::<String, _>(0)?,
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
                r.try_get::<String, _>(3)?,
                r.try_get::<i64, _>(4)?,
                r.try_get::<String, _>(5)?,
                opt(6)?,
                opt(7)?,
                opt(8)?,
                opt(9)?,
                opt(10)?,
                opt(11)?,
                r.try_get::<i64, _>(12)?,
            ));
        }
        for r in sqlx::query(
            "SELECT client_id, number, session_id FROM campaign_sessions ORDER BY client_id, number",
        )
        .fetch_all(&self.pool)
        .await?
        {
            out.push(format!(
                "campaign_sessions {} {} {}",
                r.try_get::<String, _>(0)?,
                r.try_get::<i64, _>(1)?,
                r.try_get::<String, _>(2)?,
            ));
        }
        Ok(out)
    }
}

fn presence_row(r: &AnyRow) -> Result<PresenceStats, sqlx::Error> {
    let int = |i: usize| r.try_get::<i64, _>(i);
    Ok(PresenceStats {
        bucket_start: int(0)?,
        bucket_end: int(1)?,
        min_concurrent: int(2)? as u32,
        max_concurrent: int(3)? as u32,
        live_ms: int(4)? as u64,
        unique_viewers: int(5)? as u32,
        pings: int(6)? as u32,
        joins: int(7)? as u32,
        leaves: int(8)? as u32,
        expiries: int(9)? as u32,
    })
}
