//! The store against both databases it runs on: the embedded SQLite file and
//! the real PostgreSQL on 127.0.0.1:5432 (a fresh database per test; the
//! test command starts the server). One schema, the same answers, and
//! writes that are idempotent.

use std::sync::Arc;

use eventflow::engine::campaign::{CampaignRows, DateRange};
use eventflow::engine::{
    ActivityBucket, Engine, EngineConfig, Period, PresenceBucket, PresenceStats, RollupBucket,
};

use eventflow::sink::store::{Batch, Store};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh Postgres database, dropped at the end of the test.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    async fn create() -> (PgDatabase, Store) {
        let name = format!(
            "ef_store_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
        );
        let admin = Store::connect(ADMIN_URL)
            .await
            .expect("Postgres on 127.0.0.1:5432 (scripts/services starts it)");
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let store = Store::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
            .await
            .unwrap();
        (PgDatabase { name }, store)
    }

    async fn drop_it(self, store: Store) {
        store.close().await;
        let admin = Store::connect(ADMIN_URL).await.unwrap();
        admin
            .execute_admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

fn stats(start: i64, live_ms: u64) -> PresenceStats {
    PresenceStats {
        bucket_start: start,
        bucket_end: start + 300_000,
        min_concurrent: 1,
        max_concurrent: 4,
        live_ms,
        unique_viewers: 5,
        pings: 20,
        joins: 5,
        leaves: 1,
        expiries: 2,
    }
}

fn batch() -> Batch {
    let w: Arc<str> = "w-17".into();
    Batch {
        presence: vec![
            PresenceBucket {
                webinar_id: w.clone(),
                stats: stats(1_764_000_000_000, 600_000),
            },
            PresenceBucket {
                webinar_id: w.clone(),
                stats: stats(1_764_000_300_000, 900_000),
            },
            PresenceBucket {
                webinar_id: "w-18".into(),
                stats: stats(1_764_000_000_000, 1),
            },
        ],
        rollups: vec![RollupBucket {
            webinar_id: w.clone(),
            period: Period::Hour,
            start: 1_763_999_200_000,
            end: 1_764_002_800_000,
            unique_viewers: 7,
        }],
        activity: vec![ActivityBucket {
            webinar_id: w,
            bucket_start: 1_764_000_000_000,
            bucket_end: 1_764_000_300_000,
            counts: [3, 1, 0, 0, 0, 0, 2],
        }],
        campaigns: campaign_rows(),
        position: Some(("local-log".into(), "2026-11-26:1234".into())),
    }
}

/// Campaign rows made by the engine from a few events.
fn campaign_rows() -> CampaignRows {
    campaign_engine().take_campaign_rows()
}

fn campaign_engine() -> Engine {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    for line in [
        r#"{"type":"visit","client_id":"c1","campaign_id":"k1","session_id":"s1","link_id":"l1","utm":{"source":"news"},"ts":1764000000000}"#,
        r#"{"type":"visit","client_id":"c1","campaign_id":"k1","session_id":"s2","ts":1764000001000}"#,
        r#"{"type":"pageview","client_id":"c1","campaign_id":"k1","session_id":"s2","path":"/a","ts":1764000002000}"#,
        r#"{"type":"conversion","client_id":"c1","campaign_id":"k1","entry_id":"e1","session_id":"s1","webinar_id":"w-17","ts":1764000003000}"#,
    ] {
        engine
            .apply(&eventflow::event::decode(line.as_bytes()).unwrap(), None)
            .unwrap();
    }
    engine
}

const CAMPAIGN_DUMP: [&str; 7] = [
    "campaign_days c1 k1 2025-11-24 visits=2 conversions=1 bot_visits=0 pageviews=1 covered=1 sessions=[0,1]",
    "client_days c1 2025-11-24 visits=2 link_visits=1 conversions=1 sessions=[0,1] link_sessions=[0] webinars=[w-17]",
    "link_days c1 l1 2025-11-24 visits=1 conversions=1 sessions=[0]",
    "pageview_days c1 2025-11-24 /a pageviews=1",
    "campaign_conversions c1 e1 k1 2025-11-24 ts=1764000003000 session utm=news/-/- link=l1 webinar=w-17 session=s1 visit_before=1",
    "campaign_sessions c1 0 s1",
    "campaign_sessions c1 1 s2",
];

async fn exercise(store: &Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // applying twice changes nothing
    let b = batch();
    store.write(&b, 1).await.unwrap();
    store.write(&b, 2).await.unwrap(); // idempotent
    let rows = store.presence_buckets("w-17", 0, i64::MAX).await.unwrap();
    assert_eq!(rows, vec![b.presence[0].stats, b.presence[1].stats]);
    assert_eq!(
        store.recent_presence("w-17", 1).await.unwrap(),
        vec![b.presence[1].stats]
    );
    assert_eq!(store.all_presence().await.unwrap().len(), 3);
    assert_eq!(
        store.rollups("w-17", "1h", 0, i64::MAX).await.unwrap(),
        vec![(1_763_999_200_000, 1_764_002_800_000, 7)]
    );
    assert_eq!(
        store.activity("w-17", 0, i64::MAX).await.unwrap(),
        vec![
            ("chat".to_owned(), 3),
            ("cta".to_owned(), 2),
            ("question".to_owned(), 1)
        ]
    );
    assert_eq!(
        store.position("local-log").await.unwrap().as_deref(),
        Some("2026-11-26:1234")
    );
    // A later write of the same bucket replaces it with the new absolute values.
    let mut again = batch();
    again.presence[0].stats.live_ms = 700_000;
    again.position = Some(("local-log".into(), "2026-11-26:2000".into()));
    store.write(&again, 3).await.unwrap();
    let rows = store
        .presence_buckets("w-17", 0, 1_764_000_300_000)
        .await
        .unwrap();
    assert_eq!(rows[0].live_ms, 700_000);
    assert_eq!(
        store.position("local-log").await.unwrap().as_deref(),
        Some("2026-11-26:2000")
    );
    assert_eq!(store.campaign_dump().await.unwrap(), CAMPAIGN_DUMP);
    // Read back and taken in by an engine that never saw the events, the
    // rows answer as the engine that made them.
    let mut fresh = Engine::new(EngineConfig::default()).unwrap();
    let absorbed = fresh.absorb_restored(1, store.campaign_rows().await.unwrap());
    assert_eq!(absorbed, 7);
    let range = DateRange {
        from: jiff::civil::date(2025, 11, 1),
        to: jiff::civil::date(2025, 11, 30),
    };
    let (made, taken) = (campaign_engine().campaigns(), fresh.campaigns());
    assert_eq!(taken.overview("c1", range), made.overview("c1", range));
    assert_eq!(taken.summary("c1", range), made.summary("c1", range));
    assert_eq!(
        taken.campaign_stats("c1", "k1", range),
        made.campaign_stats("c1", "k1", range)
    );
    assert_eq!(
        taken.link_stats("c1", "l1", range),
        made.link_stats("c1", "l1", range)
    );
    assert_eq!(fresh.restored_through(), 1);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::embedded(dir.path()).await.unwrap();
    assert!(store.is_sqlite());
    exercise(&store).await;
}

#[tokio::test]
async fn postgres_store_shares_the_schema() {
    let (db, store) = PgDatabase::create().await;
    assert!(!store.is_sqlite());
    exercise(&store).await;
    db.drop_it(store).await;
}
