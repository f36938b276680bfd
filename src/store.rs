//! The statistics store: final buckets, rollups and source positions in SQL.
//!
//! One schema (`migrations/`) serves the embedded SQLite file and Postgres,
//! through sqlx's runtime-chosen `Any` driver; the URL picks the database.
//! Every write is a transaction of idempotent upserts of absolute values
//! together with the source position they reflect, so writing a batch twice
//! changes nothing and rows never run ahead of or behind their position.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

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
    /// The source and the position these rows reflect.
    pub position: Option<(String, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.presence.is_empty()
            && self.rollups.is_empty()
            && self.activity.is_empty()
            && self.position.is_none()
    }

    pub fn rows(&self) -> usize {
        self.presence.len() + self.rollups.len() + self.activity.len()
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
        let mut tx = self.pool.begin().await?;
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
        tx.commit().await
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
