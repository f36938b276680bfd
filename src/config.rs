//! Layered configuration (DESIGN §10): the defaults of `config/default.toml`
//! (built into the binary), then a file given with `--config`, then
//! environment variables `EVENTFLOW__<SECTION>__<KEY>`. Unknown keys are
//! errors, so a misspelt setting never goes unnoticed.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;

/// One numeric key: its name, its valid range (inclusive) and where its
/// value is.
pub struct Range {
    pub key: &'static str,
    pub min: i64,
    pub max: i64,
    pub value: fn(&Settings) -> i64,
}

/// The valid range of every numeric key. Rules between keys (a bucket
/// divides an hour, WebSockets fewer than connections, …) are checked
/// beside these.
pub const RANGES: [Range; 27] = [
    Range {
        key: "http.rate_limit_per_sec",
        min: 0,
        max: 1_000_000,
        value: |s| i64::from(s.http.rate_limit_per_sec),
    },
    Range {
        key: "window.bucket_ms",
        min: 1_000,
        max: 3_600_000,
        value: |s| s.window.bucket_ms,
    },
    Range {
        key: "window.late_ms",
        min: 0,
        max: DAY_MS,
        value: |s| s.window.late_ms,
    },
    Range {
        key: "window.max_future_ms",
        min: 0,
        max: DAY_MS,
        value: |s| s.window.max_future_ms,
    },
    Range {
        key: "window.idle_lag_ms",
        min: 0,
        max: i64::MAX,
        value: |s| s.window.idle_lag_ms,
    },
    Range {
        key: "presence.ttl_ms",
        min: 1_000,
        max: DAY_MS,
        value: |s| s.presence.ttl_ms,
    },
    Range {
        key: "live.push_interval_ms",
        min: 1,
        max: 60_000,
        value: |s| wide(s.live.push_interval_ms),
    },
    Range {
        key: "attribution.window_days",
        min: 1,
        max: 365,
        value: |s| i64::from(s.attribution.window_days),
    },
    Range {
        key: "log.compress_after_days",
        min: 0,
        max: 36_500,
        value: |s| i64::from(s.log.compress_after_days),
    },
    Range {
        key: "log.retain_days",
        min: 1,
        max: 36_500,
        value: |s| i64::from(s.log.retain_days),
    },
    Range {
        key: "log.checkpoint_interval_ms",
        min: 100,
        max: 3_600_000,
        value: |s| wide(s.log.checkpoint_interval_ms),
    },
    Range {
        key: "nats.retain_days",
        min: 0,
        max: 36_500,
        value: |s| i64::from(s.nats.retain_days),
    },
    Range {
        key: "nats.max_bytes",
        min: 0,
        max: i64::MAX,
        value: |s| s.nats.max_bytes,
    },
    Range {
        key: "nats.duplicate_window_ms",
        min: 1_000,
        max: DAY_MS,
        value: |s| wide(s.nats.duplicate_window_ms),
    },
    Range {
        key: "nats.ack_wait_ms",
        min: 2_000,
        max: DAY_MS,
        value: |s| wide(s.nats.ack_wait_ms),
    },
    Range {
        key: "nats.publish_timeout_ms",
        min: 1,
        max: 60_000,
        value: |s| wide(s.nats.publish_timeout_ms),
    },
    Range {
        key: "nats.partitions",
        min: 1,
        max: 1024,
        value: |s| i64::from(s.nats.partitions),
    },
    Range {
        key: "nats.lease_ttl_ms",
        min: 2_000,
        max: 600_000,
        value: |s| wide(s.nats.lease_ttl_ms),
    },
    Range {
        key: "nats.replicas",
        min: 1,
        max: 5,
        value: |s| i64::from(s.nats.replicas),
    },
    Range {
        key: "limits.max_connections",
        min: 2,
        max: 1_000_000,
        value: |s| wide(s.limits.max_connections as u64),
    },
    Range {
        key: "limits.max_websockets",
        min: 1,
        max: 1_000_000,
        value: |s| wide(s.limits.max_websockets as u64),
    },
    Range {
        key: "limits.max_websockets_per_token",
        min: 1,
        max: 1_000_000,
        value: |s| wide(s.limits.max_websockets_per_token as u64),
    },
    Range {
        key: "limits.header_timeout_ms",
        min: 1,
        max: 600_000,
        value: |s| wide(s.limits.header_timeout_ms),
    },
    Range {
        key: "limits.body_timeout_ms",
        min: 1,
        max: 3_600_000,
        value: |s| wide(s.limits.body_timeout_ms),
    },
    // Control frames (pings, pongs, closes) carry up to 125 bytes.
    Range {
        key: "limits.ws_max_message_bytes",
        min: 125,
        max: 16 << 20,
        value: |s| wide(s.limits.ws_max_message_bytes as u64),
    },
    Range {
        key: "limits.max_public_entities",
        min: 1,
        max: 100_000_000,
        value: |s| wide(s.limits.max_public_entities as u64),
    },
    Range {
        key: "limits.new_entities_per_minute",
        min: 0,
        max: 1_000_000,
        value: |s| i64::from(s.limits.new_entities_per_minute),
    },
];

/// A `u64` or `usize` setting as `i64` (saturating: past `i64::MAX` is out
/// of every range anyway).
fn wide(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const DAY_MS: i64 = 86_400_000;

/// `http.addr` is `host:port`: a port, and a host that is an address or a
/// name (IPv6 in brackets).
fn check_addr(addr: &str) -> anyhow::Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "http.addr: {addr:?} is not host:port (e.g. 127.0.0.1:8080, localhost:8080, [::]:8080)"
        )
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let v6_ok = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    if name_ok || v6_ok { Ok(()) } else { Err(bad()) }
}

/// The built-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: Http,
    pub data: Data,
    #[serde(default)]
    pub nats: Nats,
    #[serde(default)]
    pub redis: Redis,
    #[serde(default)]
    pub postgres: External,
    pub window: Window,
    pub presence: Presence,
    pub live: Live,
    pub stats: Stats,
    pub attribution: Attribution,
    pub log: Log,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `host:port`: an address (`0.0.0.0:8080`, `[::1]:8080`) or a host
    /// name (`localhost:8080`), resolved when the service binds.
    pub addr: String,
    pub allowed_origins: Vec<String>,
    pub rate_limit_per_sec: u32,
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub dir: PathBuf,
}

/// An external part, switched on by its URL.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    pub url: Option<String>,
}

/// How the service uses NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NatsMode {
    /// The JetStream stream is the event log: at-least-once delivery,
    /// exactly-once results.
    Jetstream,
    /// Plain subscriptions, no stream: at-most-once.
    Core,
}

/// NATS, switched on by its URL (DESIGN §5, §7).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nats {
    pub url: Option<String>,
    pub mode: NatsMode,
    /// Subjects are `<prefix>.presence.<webinar_id>` and so on.
    pub subject_prefix: String,
    pub stream: String,
    pub dlq_stream: String,
    /// The durable pull consumer's name.
    pub consumer: String,
    /// Messages older than this are removed from the stream (0: kept).
    pub retain_days: u32,
    /// The stream's size limit in bytes (0: none).
    pub max_bytes: i64,
    /// Publishes with the same `Nats-Msg-Id` within this window are stored once.
    pub duplicate_window_ms: u64,
    /// Delivered but unacknowledged messages are sent again after this.
    pub ack_wait_ms: u64,
    /// How long an HTTP publish waits for the stream's acknowledgement
    /// before the event goes to the local spool instead.
    pub publish_timeout_ms: u64,
    /// Partitions of the event stream (DESIGN §8), fixed for a stream's
    /// life: with more than one, an event's subject carries its partition
    /// (`<prefix>.p<n>.presence.<webinar_id>`, see `crate::partition`).
    pub partitions: u32,
    /// Copies JetStream keeps of the streams (1 on a single server; 3 on a
    /// cluster of three or more, so a node may fail without losing
    /// anything acknowledged). Applied when a stream is created.
    pub replicas: u32,
    /// Share the partitions with other instances through leases (DESIGN
    /// §8): this instance runs only the partitions it holds. Needs
    /// JetStream and Postgres (where partitions' checkpoints are kept).
    pub leases: bool,
    /// A lease not renewed for this long lapses, and another instance
    /// takes the partition over; renewed every quarter of it.
    pub lease_ttl_ms: u64,
    /// This instance's name among the lease holders (default: host name,
    /// process id and a random suffix).
    pub instance: Option<String>,
}

impl Default for Nats {
    fn default() -> Self {
        Nats {
            url: None,
            mode: NatsMode::Jetstream,
            subject_prefix: "eventflow".into(),
            stream: "EVENTFLOW".into(),
            dlq_stream: "EVENTFLOW_DLQ".into(),
            consumer: "eventflow-aggregator".into(),
            retain_days: 7,
            max_bytes: 0,
            duplicate_window_ms: 120_000,
            ack_wait_ms: 600_000,
            publish_timeout_ms: 2_000,
            partitions: 1,
            replicas: 1,
            leases: false,
            lease_ttl_ms: 10_000,
            instance: None,
        }
    }
}

/// Redis, switched on by its URL; keys live under `prefix`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub url: Option<String>,
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: None,
            prefix: default_redis_prefix(),
        }
    }
}

fn default_redis_prefix() -> String {
    "eventflow".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub bucket_ms: i64,
    pub late_ms: i64,
    pub max_future_ms: i64,
    pub idle_lag_ms: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    pub ttl_ms: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Live {
    pub push_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub timezone: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    pub window_days: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub compress_after_days: u32,
    pub retain_days: u32,
    pub checkpoint_interval_ms: u64,
}

/// What one client may hold of the service (connections, WebSockets) and
/// for how long, so that sockets never starve the log, the store or the
/// engine of file descriptors or time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections (HTTP and WebSocket) at once; one past it is
    /// closed as soon as it is accepted. Lowered at start to what the
    /// open-file limit allows beyond the descriptors kept for the log, the
    /// store and the checkpoint.
    pub max_connections: usize,
    /// Open WebSockets at once; an upgrade past it is answered 503.
    pub max_websockets: usize,
    /// Open WebSockets per token; an upgrade past it is answered 429.
    pub max_websockets_per_token: usize,
    /// A connection must deliver a request's headers within this long of
    /// opening or of its previous response (so this is also the keep-alive
    /// idle timeout), or it is closed.
    pub header_timeout_ms: u64,
    /// A request's body must arrive whole within this long of its headers,
    /// or the request is answered 408 and the connection closed.
    pub body_timeout_ms: u64,
    /// The largest WebSocket message (and frame) a client may send; a larger
    /// one closes the socket with 1009 before its payload is read.
    pub ws_max_message_bytes: usize,
    /// Distinct webinars, campaigns and clients the browser endpoints keep
    /// admitted at once (an idle one is released after a day).
    pub max_public_entities: usize,
    /// New webinars, campaigns or clients one client address may introduce
    /// per minute through the browser endpoints (0: unlimited).
    pub new_entities_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_public_entities: 100_000,
            new_entities_per_minute: 60,
            max_connections: 8192,
            max_websockets: 4096,
            max_websockets_per_token: 16,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            ws_max_message_bytes: 4096,
        }
    }
}

impl Limits {
    /// The rules between limits (each one's own range is in [`RANGES`]).
    fn validate(&self) -> anyhow::Result<()> {
        if self.max_websockets >= self.max_connections {
            anyhow::bail!(
                "limits.max_websockets: must be less than limits.max_connections \
                 (WebSockets hold connections; the rest are for ingest and reads)"
            );
        }
        if self.max_websockets_per_token > self.max_websockets {
            anyhow::bail!(
                "limits.max_websockets_per_token: must be between 1 and limits.max_websockets"
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub secret: Option<String>,
    /// Browser ingest: `open` to anyone (the rate limit and bounds protect
    /// it), or `signed`, with an ingest key per webinar, campaign or client.
    pub ingest: IngestMode,
}

/// Who may send browser events (`auth.ingest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestMode {
    #[default]
    Open,
    Signed,
}

/// The shortest `auth.secret` accepted: 32 bytes, an HMAC-SHA256 key's
/// worth of `openssl rand -hex 16`, and what `openssl rand -hex 32` far exceeds.
pub const MIN_SECRET_BYTES: usize = 32;

/// Values copied from examples and tutorials, refused whatever their length
/// (compared without case, `-`, `_` and spaces).
const PLACEHOLDER_SECRETS: &[&str] = &[
    "changeme",
    "changethis",
    "secret",
    "password",
    "passw0rd",
    "default",
    "example",
    "test",
    "testsecret",
    "eventflow",
    "yoursecret",
    "mysecret",
    "supersecret",
    "xxxxxxxx",
];

/// Refuses an `auth.secret` anyone could guess: shorter than
/// [`MIN_SECRET_BYTES`], a known placeholder (or one repeated), or one
/// character repeated. Tokens signed with it would be forgeable.
pub fn check_secret(secret: &str) -> anyhow::Result<()> {
    const HOW: &str = "make one with `openssl rand -hex 32`, or leave auth.secret unset \
                       for a random key per run";
    let folded: String = secret
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    let placeholder = PLACEHOLDER_SECRETS.iter().any(|p| {
        !folded.is_empty()
            && folded.len().is_multiple_of(p.len())
            && folded == p.repeat(folded.len() / p.len())
    });
    if placeholder {
        anyhow::bail!("auth.secret: is a well-known placeholder, not a secret; {HOW}");
    }
    if secret.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "auth.secret: must be at least {MIN_SECRET_BYTES} bytes (it has {}); {HOW}",
            secret.len()
        );
    }
    let mut chars = secret.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        anyhow::bail!("auth.secret: is one character repeated, not a secret; {HOW}");
    }
    Ok(())
}

impl Settings {
    /// Loads the layers: defaults, then `file`, then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        Self::from_figment(Self::figment(file))
    }

    /// The layers, for callers that add their own on top (tests).
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed("EVENTFLOW__").split("__"))
    }

    pub fn from_figment(figment: Figment) -> anyhow::Result<Settings> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values against their rules, naming the key. Every
    /// numeric key has the range in [`RANGES`] (documented in the README).
    pub fn validate(&self) -> anyhow::Result<()> {
        for Range {
            key,
            min,
            max,
            value,
        } in RANGES
        {
            let value = value(self);
            if !(min..=max).contains(&value) {
                anyhow::bail!("{key}: {value} is outside {min}..={max}");
            }
        }
        self.engine().validate()?;
        if 3_600_000 % self.window.bucket_ms != 0 {
            anyhow::bail!("window.bucket_ms: must divide an hour (3600000), as 60000 or 300000 do");
        }
        check_addr(&self.http.addr)?;
        if jiff::tz::TimeZone::get(&self.stats.timezone).is_err() {
            anyhow::bail!(
                "stats.timezone: {:?} is not an IANA time zone",
                self.stats.timezone
            );
        }
        self.validate_nats()?;
        self.trusted_proxies()?;
        self.limits.validate()?;
        if let Some(secret) = &self.auth.secret {
            check_secret(secret)?;
        }
        if self.auth.ingest == IngestMode::Signed && self.auth.secret.is_none() {
            anyhow::bail!(
                "auth.ingest: \"signed\" needs auth.secret, so that ingest keys minted by your backend verify"
            );
        }
        for origin in &self.http.allowed_origins {
            if origin.parse::<axum::http::HeaderValue>().is_err() || !origin.contains("://") {
                anyhow::bail!(
                    "http.allowed_origins: {origin:?} is not an origin like https://app.example.com"
                );
            }
        }
        Ok(())
    }

    fn validate_nats(&self) -> anyhow::Result<()> {
        let n = &self.nats;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if n.subject_prefix.is_empty() || n.subject_prefix.split('.').any(|t| !token(t)) {
            anyhow::bail!(
                "nats.subject_prefix: {:?} must be dot-separated tokens of [A-Za-z0-9_-]",
                n.subject_prefix
            );
        }
        for (key, name) in [
            ("nats.stream", &n.stream),
            ("nats.dlq_stream", &n.dlq_stream),
            ("nats.consumer", &n.consumer),
        ] {
            if !token(name) {
                anyhow::bail!("{key}: {name:?} must be a non-empty name of [A-Za-z0-9_-]");
            }
        }
        if n.leases {
            if self.nats.url.is_none() || n.mode != NatsMode::Jetstream {
                anyhow::bail!(
                    "nats.leases: sharing partitions needs JetStream (nats.url, nats.mode = \"jetstream\")"
                );
            }
            if self.postgres.url.is_none() {
                anyhow::bail!(
                    "nats.leases: sharing partitions needs Postgres (postgres.url), where every \
                     instance reads the partitions' checkpoints and writes their rows"
                );
            }
        }
        if let Some(id) = &n.instance
            && !token(id)
        {
            anyhow::bail!("nats.instance: {id:?} must be a non-empty name of [A-Za-z0-9_-]");
        }
        if n.stream == n.dlq_stream {
            anyhow::bail!("nats.dlq_stream: must differ from nats.stream");
        }
        if n.ack_wait_ms < 2 * self.log.checkpoint_interval_ms.max(1_000) {
            anyhow::bail!(
                "nats.ack_wait_ms: must be at least twice log.checkpoint_interval_ms \
                 (messages are acknowledged once a checkpoint covers them)"
            );
        }
        Ok(())
    }

    /// The engine's part of the settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            bucket_ms: self.window.bucket_ms,
            ttl_ms: self.presence.ttl_ms,
            late_ms: self.window.late_ms,
            max_future_ms: self.window.max_future_ms,
            timezone: self.time_zone(),
            attribution_window_days: self.attribution.window_days,
        }
    }

    /// `http.trusted_proxies`, parsed (a bare address is a /32 or /128).
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.http
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "http.trusted_proxies: {p:?} is not an address or a CIDR like 10.0.0.0/8"
                        )
                    })
            })
            .collect()
    }

    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.stats.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The local event log, the source of truth without NATS.
    pub fn log_dir(&self) -> PathBuf {
        self.data.dir.join("log")
    }

    /// With JetStream on: where HTTP ingest keeps events while NATS is
    /// unreachable, until they are forwarded to the stream.
    pub fn spool_dir(&self) -> PathBuf {
        self.data.dir.join("spool")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).unwrap();
        assert_eq!(s.http.addr, "127.0.0.1:8080");
        assert!(s.http.allowed_origins.is_empty());
        assert_eq!(s.data.dir, PathBuf::from("./data"));
        assert!(s.nats.url.is_none() && s.redis.url.is_none() && s.postgres.url.is_none());
        assert_eq!(s.engine(), EngineConfig::default());
        assert_eq!(s.window.idle_lag_ms, 2_000);
        assert_eq!(s.live.push_interval_ms, 250);
        assert_eq!(s.stats.timezone, "UTC");
        assert_eq!(s.attribution.window_days, 30);
        assert_eq!((s.log.compress_after_days, s.log.retain_days), (1, 30));
        assert!(s.auth.secret.is_none());
        assert_eq!(
            s.limits,
            Limits::default(),
            "default.toml and Limits::default agree"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own error type
    fn layers_override_in_order_and_env_names_nest() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "over.toml",
                "[window]\nbucket_ms = 60000\n[presence]\nttl_ms = 1000\n",
            )?;
            jail.set_env("EVENTFLOW__PRESENCE__TTL_MS", "2000");
            jail.set_env("EVENTFLOW__NATS__URL", "nats://127.0.0.1:4222");
            let s = Settings::load(Some(Path::new("over.toml"))).unwrap();
            assert_eq!(s.window.bucket_ms, 60_000, "file over defaults");
            assert_eq!(s.presence.ttl_ms, 2_000, "environment over file");
            assert_eq!(s.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
            Ok(())
        });
    }

    #[test]
    fn bad_settings_name_the_key() {
        let err = |key: &str, value: serde_json::Value| {
            let mut map = serde_json::Map::new();
            let (section, field) = key.split_once('.').unwrap();
            map.insert(section.into(), serde_json::json!({ field: value }));
            let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(Serialized::defaults(map));
            Settings::from_figment(f).unwrap_err().to_string()
        };
        assert!(err("window.bucket_ms", 0.into()).contains("window.bucket_ms"));
        assert!(err("window.bucket_ms", 7_000.into()).contains("must divide an hour"));
        assert!(err("presence.ttl_ms", (-5).into()).contains("presence.ttl_ms"));
        assert!(err("stats.timezone", "Mars/Olympus".into()).contains("stats.timezone"));
        assert!(err("window.bucket_sm", 1.into()).contains("bucket_sm"));
        assert!(err("auth.ingest", "signed".into()).contains("needs auth.secret"));
        assert!(err("nats.mode", "push".into()).contains("mode"));
        assert!(err("nats.subject_prefix", "a..b".into()).contains("nats.subject_prefix"));
        assert!(err("nats.stream", "EVENT FLOW".into()).contains("nats.stream"));
        assert!(err("nats.ack_wait_ms", 1_000.into()).contains("nats.ack_wait_ms"));
        assert!(
            err("nats.leases", true.into())
                .contains("nats.leases: sharing partitions needs JetStream")
        );
        assert!(err("nats.instance", "a b".into()).contains("nats.instance"));
        // With NATS but no Postgres, where partitions' checkpoints live.
        let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(Serialized::defaults(
            serde_json::json!({"nats": {"url": "nats://127.0.0.1:4222", "leases": true}}),
        ));
        let no_store = Settings::from_figment(f).unwrap_err().to_string();
        assert!(
            no_store.contains("nats.leases") && no_store.contains("postgres.url"),
            "{no_store}"
        );
        assert!(
            err("http.allowed_origins", serde_json::json!(["nope"]))
                .contains("http.allowed_origins")
        );
        assert!(err("limits.max_connections", 1.into()).contains("limits.max_connections"));
        assert!(err("limits.max_websockets", 8192.into()).contains("limits.max_websockets"));
        assert!(
            err("limits.max_websockets_per_token", 0.into())
                .contains("limits.max_websockets_per_token")
        );
        assert!(err("limits.header_timeout_ms", 0.into()).contains("limits.header_timeout_ms"));
        assert!(err("limits.body_timeout_ms", 0.into()).contains("limits.body_timeout_ms"));
        assert!(
            err("limits.ws_max_message_bytes", 100.into()).contains("limits.ws_max_message_bytes")
        );
        assert!(err("window.bucket_ms", 1.into()).contains("outside 1000..=3600000"));
        assert!(err("http.addr", "8080".into()).contains("http.addr"));
        assert!(err("http.addr", "local host:80".into()).contains("http.addr"));
        assert!(err("http.addr", "[::1:80".into()).contains("http.addr"));
    }

    /// Just past either end of its range, every numeric key is refused by
    /// name (at the end where a value of its type exists), and each end
    /// itself is not refused for being out of range.
    #[test]
    fn every_numeric_key_is_checked_against_its_range() {
        let with = |key: &str, value: i128| {
            let (section, field) = key.split_once('.').unwrap();
            let mut map = serde_json::Map::new();
            map.insert(section.into(), serde_json::json!({ field: value as i64 }));
            let f = Figment::from(Toml::string(DEFAULT_TOML)).merge(Serialized::defaults(map));
            Settings::from_figment(f)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        for Range { key, min, max, .. } in RANGES {
            for outside in [i128::from(min) - 1, i128::from(max) + 1] {
                if i64::try_from(outside).is_err() {
                    continue;
                }
                match with(key, outside) {
                    Ok(()) => panic!("{key} = {outside} accepted"),
                    // A value its type cannot hold is refused by figment,
                    // naming the key's field.
                    Err(e) => assert!(
                        e.contains(key) || e.contains(key.split_once('.').unwrap().1),
                        "{key} = {outside}: {e}"
                    ),
                }
            }
            for end in [min, max] {
                if let Err(e) = with(key, i128::from(end)) {
                    assert!(!e.contains("is outside"), "{key} = {end}: {e}");
                }
            }
        }
    }

    #[test]
    fn host_names_are_valid_listen_addresses() {
        for addr in [
            "localhost:8080",
            "0.0.0.0:80",
            "[::]:8080",
            "events.internal:9000",
        ] {
            assert!(check_addr(addr).is_ok(), "{addr}");
        }
    }

    #[test]
    fn guessable_secrets_are_refused_naming_the_key_and_the_remedy() {
        let err = |secret: &str| {
            let f = Figment::from(Toml::string(DEFAULT_TOML))
                .merge(Serialized::default("auth.secret", secret));
            Settings::from_figment(f).unwrap_err().to_string()
        };
        for bad in [
            "",
            "change-me",
            "CHANGE_ME",
            "secret",
            "password",
            "test-secret",
            "0123456789abcdef0123456789abcde",
            "change-me-change-me-change-me-change-me",
            "SecretSecretSecretSecretSecretSecret",
            &"a".repeat(64),
        ] {
            let e = err(bad);
            assert!(
                e.contains("auth.secret") && e.contains("openssl rand -hex 32"),
                "{bad:?}: {e}"
            );
        }
        let good = "4f1c9a0e7b2d8e3f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
        let f = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Serialized::default("auth.secret", good));
        assert_eq!(
            Settings::from_figment(f).unwrap().auth.secret.as_deref(),
            Some(good)
        );
        let unset = Settings::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).unwrap();
        assert!(
            unset.auth.secret.is_none(),
            "unset stays allowed: a random key per run"
        );
    }
}
