//! Redis, the hot cache (DESIGN §7): per webinar the live count and the open
//! bucket, the last 48 h of final buckets, and a pub/sub channel of live
//! counts — everything under `redis.prefix`, every key with a TTL.
//!
//! The engine never waits for Redis: it drops changes into a [`CacheFeed`]
//! (the latest state per webinar, and final buckets), which a writer task
//! drains in pipelines. Every command has a response timeout. After a
//! failure — Redis may come back empty — the writer rebuilds everything once
//! it can write again: every webinar's state from the live hub and the last
//! 48 h of buckets from the store. Redis is a cache: everything in it can be
//! rebuilt, and is.
//!
//! Keys (`P` is the prefix, `W` a webinar id):
//! - `P:webinar:W:live` — hash `live`, `ts`, `open_bucket` (JSON), TTL 1 day;
//! - `P:webinar:W:buckets` — sorted set of final buckets (JSON in the replay
//!   fields) scored by `bucket_start`, trimmed to 48 h, TTL 49 h;
//! - `P:live:W` — pub/sub channel of `{"webinar_id","live","ts"}`;
//! - `P:client:C:campaign:K:day:D` — hash `visits`, `conversions`,
//!   `bot_visits`, `pageviews` of campaign `K` of client `C` on local day
//!   `D` (`YYYY-MM-DD`), written as they change, TTL 48 h;
//! - `P:fence:pN` — with `nats.leases`, partition N's fencing token: the
//!   owner's writes go in one script per partition that raises it and
//!   writes nothing when a newer owner's token is there (DESIGN §8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::PresenceStats;
use crate::engine::bucket::{bucket_json, open_bucket_json};
use crate::engine::campaign::{CampaignRows, CampaignView};
use crate::health::Readiness;
use crate::sink::live::{LiveHub, LiveState};
use crate::sink::store::Store;
use crate::util::{Clock, backoff};

/// How much final-bucket history Redis keeps.
pub const HISTORY_MS: i64 = 48 * 3_600_000;
/// Buckets held while Redis is down before falling back to a reload.
pub const MAX_PENDING_BUCKETS: usize = 100_000;
const LIVE_TTL_S: i64 = 86_400;
const BUCKETS_TTL_S: i64 = 49 * 3_600;
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A campaign's counters on one day: visits, conversions, bot visits, page
/// views.
type CampaignCounters = HashMap<(String, String, jiff::civil::Date), [u64; 4]>;

#[derive(Default)]
struct Pending {
    live: HashMap<Arc<str>, LiveState>,
    buckets: Vec<(Arc<str>, PresenceStats)>,
    campaigns: CampaignCounters,
    overflowed: bool,
}

/// Where the engine leaves changes for Redis. Never blocks.
#[derive(Default)]
pub struct CacheFeed {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl CacheFeed {
    pub fn new() -> Arc<CacheFeed> {
        Arc::new(CacheFeed::default())
    }

    pub fn live(&self, webinar_id: &Arc<str>, state: &LiveState) {
        let mut p = self.pending.lock().expect("cache feed lock");
        p.live.insert(webinar_id.clone(), *state);
        drop(p);
        self.wake.notify_one();
    }

    pub fn bucket(&self, webinar_id: &Arc<str>, stats: PresenceStats) {
        let mut p = self.pending.lock().expect("cache feed lock");
        if p.buckets.len() < MAX_PENDING_BUCKETS {
            p.buckets.push((webinar_id.clone(), stats));
        } else {
            p.overflowed = true;
        }
        drop(p);
        self.wake.notify_one();
    }

    /// The counters of the campaign days among `rows`.
    pub fn campaigns(&self, rows: &CampaignRows) {
        if rows.campaign_days.is_empty() {
            return;
        }
        let mut p = self.pending.lock().expect("cache feed lock");
        for r in &rows.campaign_days {
            p.campaigns.insert(
                (r.client_id.clone(), r.campaign_id.clone(), r.day),
                [r.visits, r.conversions, r.bot_visits, r.pageviews],
            );
        }
        drop(p);
        self.wake.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().expect("cache feed lock"))
    }

    /// Puts back what could not be written, under anything newer.
    fn restore(&self, mut old: Pending) {
        let mut p = self.pending.lock().expect("cache feed lock");
        for (k, v) in std::mem::take(&mut p.live) {
            old.live.insert(k, v);
        }
        for (k, v) in std::mem::take(&mut p.campaigns) {
            old.campaigns.insert(k, v);
        }
        old.buckets.append(&mut p.buckets);
        old.overflowed |= p.overflowed || old.buckets.len() > MAX_PENDING_BUCKETS;
        old.buckets.truncate(MAX_PENDING_BUCKETS);
        *p = old;
    }
}

/// With `nats.leases`: the partition and lease token under which this
/// instance writes an id's keys (a webinar's or a client's), or `None` when
/// another instance holds it.
pub type Fencing = Arc<dyn Fn(&str) -> Option<(u32, u64)> + Send + Sync>;

/// Key names under the prefix, and how writes are fenced.
pub struct Keys {
    pub prefix: String,
    pub fencing: Option<Fencing>,
}

impl Keys {
    pub fn live(&self, w: &str) -> String {
        format!("{}:webinar:{w}:live", self.prefix)
    }
    /// A partition's fencing token (DESIGN §8).
    pub fn fence(&self, partition: u32) -> String {
        format!("{}:fence:p{partition}", self.prefix)
    }
    pub fn buckets(&self, w: &str) -> String {
        format!("{}:webinar:{w}:buckets", self.prefix)
    }
    pub fn channel(&self, w: &str) -> String {
        format!("{}:live:{w}", self.prefix)
    }
    pub fn campaign_day(&self, client: &str, campaign: &str, day: jiff::civil::Date) -> String {
        format!(
            "{}:client:{client}:campaign:{campaign}:day:{day}",
            self.prefix
        )
    }
}

pub async fn connect(url: &str) -> Result<ConnectionManager, ::redis::RedisError> {
    let client = ::redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_connection_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config).await
}

/// Whether Redis at `url` answers a PING within the response timeout; the
/// error names Redis and its URL (without credentials).
pub async fn check(url: &str) -> Result<(), String> {
    let name = crate::util::redact_credentials(url);
    let ping = async {
        let mut c = connect(url).await?;
        ::redis::cmd("PING").query_async::<()>(&mut c).await
    };
    match tokio::time::timeout(2 * RESPONSE_TIMEOUT, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("Redis at {name}: {e}")),
        Err(_) => Err(format!(
            "Redis at {name}: no answer in {:?}",
            2 * RESPONSE_TIMEOUT
        )),
    }
}

/// Drains the feed into Redis until shutdown, retrying with capped,
/// jittered backoff and reporting Redis on `/readyz` while it is down.
#[allow(clippy::too_many_arguments)]
pub async fn writer(
    url: String,
    keys: Keys,
    feed: Arc<CacheFeed>,
    hub: Arc<LiveHub>,
    store: Store,
    campaigns: CampaignView,
    ready: watch::Sender<Readiness>,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let mut conn: Option<ConnectionManager> = None;
    let mut attempt = 0u32;
    // The first round fills Redis from the store and the engine (it keeps
    // nothing across its own restarts), and says at once whether it answers.
    let mut reload = true;
    loop {
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut batch = feed.take();
        if batch.live.is_empty()
            && batch.buckets.is_empty()
            && batch.campaigns.is_empty()
            && !batch.overflowed
            && !reload
        {
            continue;
        }
        reload |= batch.overflowed;
        batch.overflowed = false;
        let result = async {
            if conn.is_none() {
                conn = Some(connect(&url).await?);
            }
            let c = conn.as_mut().expect("connected above");
            if reload {
                let since = clock() - HISTORY_MS;
                let rows = store.presence_since(since).await.map_err(|e| {
                    ::redis::RedisError::from((
                        ::redis::ErrorKind::IoError,
                        "reading the store",
                        e.to_string(),
                    ))
                })?;
                let states: HashMap<Arc<str>, LiveState> = hub.all_states().into_iter().collect();
                let counters: CampaignCounters = campaigns
                    .counters_since(clock() - HISTORY_MS)
                    .into_iter()
                    .map(|(client, campaign, day, n)| ((client, campaign, day), n))
                    .collect();
                write(c, &keys, &states, &rows, &counters, clock()).await?;
            }
            write(
                c,
                &keys,
                &batch.live,
                &batch.buckets,
                &batch.campaigns,
                clock(),
            )
            .await
        }
        .await;
        match result {
            Ok(()) => {
                let marked = ready
                    .borrow()
                    .degraded
                    .iter()
                    .any(|(part, _)| part == "redis");
                if attempt > 0 || marked {
                    tracing::info!("Redis answers; the cache caught up");
                    ready.send_modify(|r| r.degraded.retain(|(part, _)| part != "redis"));
                }
                attempt = 0;
                reload = false;
            }
            Err(e) => {
                let why = format!("Redis at {}: {e}", crate::util::redact_credentials(&url));
                if attempt == 0 {
                    tracing::warn!(error = %why, "writing to Redis failed; retrying, aggregation goes on");
                }
                ready.send_modify(|r| {
                    r.degraded.retain(|(part, _)| part != "redis");
                    r.degraded.push(("redis".into(), why));
                });
                feed.restore(batch);
                conn = None;
                reload = true;
                let wait = backoff(attempt, Duration::from_millis(200), Duration::from_secs(5));
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                feed.wake.notify_one();
            }
        }
    }
}

async fn write(
    c: &mut ConnectionManager,
    keys: &Keys,
    live: &HashMap<Arc<str>, LiveState>,
    buckets: &[(Arc<str>, PresenceStats)],
    campaigns: &CampaignCounters,
    now: i64,
) -> Result<(), ::redis::RedisError> {
    // Each command with the id (client or webinar) whose partition it
    // belongs to.
    let mut cmds: Vec<(&str, Vec<String>)> = Vec::new();
    let cmd = |args: &[&str]| {
        args.iter()
            .map(|a| (*a).to_owned())
            .collect::<Vec<String>>()
    };
    for ((client, campaign, day), n) in campaigns {
        let key = keys.campaign_day(client, campaign, *day);
        let n = n.map(|v| v.to_string());
        cmds.push((
            client,
            cmd(&[
                "HSET",
                &key,
                "visits",
                &n[0],
                "conversions",
                &n[1],
                "bot_visits",
                &n[2],
                "pageviews",
                &n[3],
            ]),
        ));
        cmds.push((client, cmd(&["EXPIRE", &key, &BUCKETS_TTL_S.to_string()])));
    }
    for (w, st) in live {
        let key = keys.live(w);
        let open = st
            .open_bucket
            .map(|b| open_bucket_json(w, &b, st.ts).to_string())
            .unwrap_or_else(|| "null".into());
        let (count, ts) = (st.live.to_string(), st.ts.to_string());
        cmds.push((
            w,
            cmd(&[
                "HSET",
                &key,
                "live",
                &count,
                "ts",
                &ts,
                "open_bucket",
                &open,
            ]),
        ));
        cmds.push((w, cmd(&["EXPIRE", &key, &LIVE_TTL_S.to_string()])));
        let message =
            serde_json::json!({"webinar_id": &**w, "live": st.live, "ts": st.ts}).to_string();
        cmds.push((w, cmd(&["PUBLISH", &keys.channel(w), &message])));
    }
    for (w, b) in buckets {
        let key = keys.buckets(w);
        let start = b.bucket_start.to_string();
        // Replace any earlier member for the same bucket (idempotent rewrite).
        cmds.push((w, cmd(&["ZREMRANGEBYSCORE", &key, &start, &start])));
        cmds.push((
            w,
            cmd(&["ZADD", &key, &start, &bucket_json(w, b).to_string()]),
        ));
        let old = format!("({}", now - HISTORY_MS);
        cmds.push((w, cmd(&["ZREMRANGEBYSCORE", &key, "-inf", &old])));
        cmds.push((w, cmd(&["EXPIRE", &key, &BUCKETS_TTL_S.to_string()])));
    }
    let Some(fencing) = &keys.fencing else {
        let mut pipe = ::redis::pipe();
        for (_, args) in &cmds {
            let mut c = ::redis::cmd(&args[0]);
            c.arg(&args[1..]);
            pipe.add_command(c).ignore();
        }
        return pipe.query_async::<()>(c).await;
    };
    // With leases: each partition's commands in one script that first
    // raises the partition's token and does nothing when a newer owner's
    // is there; ids of partitions this instance does not hold are left
    // to their owners.
    let mut by_partition: std::collections::BTreeMap<(u32, u64), Vec<String>> = Default::default();
    for (id, args) in cmds {
        let Some(owner) = fencing(id) else { continue };
        let argv = by_partition.entry(owner).or_default();
        argv.push(args.len().to_string());
        argv.extend(args);
    }
    for ((partition, token), argv) in by_partition {
        let written: i64 = ::redis::cmd("EVAL")
            .arg(FENCED_WRITES)
            .arg(1)
            .arg(keys.fence(partition))
            .arg(token)
            .arg(argv)
            .query_async(c)
            .await?;
        if written == 0 {
            tracing::warn!(
                partition,
                token,
                "Redis holds a newer owner's token for this partition; its writes here are dropped"
            );
        }
    }
    Ok(())
}

/// Raises the partition's fencing token (KEYS[1]) to ARGV[1] and runs the
/// commands that follow (each: its length, then its words), or does
/// nothing and returns 0 when a newer token is stored.
const FENCED_WRITES: &str = r"
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if stored > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
";
