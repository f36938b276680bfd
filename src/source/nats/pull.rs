//! A JetStream pull consumer read at the protocol level: one plain
//! subscription on an inbox, and pull requests (`CONSUMER.MSG.NEXT`) of a
//! batch each, kept at most two batches ahead of what arrived.
//!
//! It does per message only what the protocol needs: tell a stream message
//! from a status message and count it against the batches asked for. The
//! stream sequence, the stored time and what the consumer still has
//! pending are read from the message's reply subject by [`AckInfo::parse`],
//! on demand. There is no per-message timer (one check runs every
//! heartbeat interval), no context clone per message and no allocation
//! beyond the messages the client hands over. async-nats's own pull stream
//! does those per message, and cost the service about a third of its
//! reading time (`BENCHMARKS.md`).
//!
//! Status messages, as the server sends them to a pull request's inbox:
//! `100` idle heartbeat (the request waits, the consumer is alive); `408`
//! request expired and `409` request ended (their `Nats-Pending-Messages`
//! header says how many of its messages will not come); `409 Consumer
//! Deleted` and anything else are errors, which the caller handles by
//! recreating the consumer at its position.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::{Client, Message, StatusCode, Subject, Subscriber};
use bytes::Bytes;

/// The JetStream API prefix of a context built without a domain.
const API: &str = "$JS.API";

/// Pull requests expire after this long; the server then says how many of
/// their messages did not come, and the reader asks again.
const EXPIRES: Duration = Duration::from_secs(30);

/// The server sends an idle heartbeat this often while a request waits.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Heartbeat intervals with nothing heard before the reader gives up (it
/// asks again after each silent one, which also recovers requests a
/// reconnect lost).
const SILENT_CHECKS: u32 = 3;

/// Reads a durable pull consumer batch by batch.
pub struct Pull {
    client: Client,
    messages: Subscriber,
    inbox: Subject,
    next_subject: Subject,
    request: Bytes,
    batch: usize,
    /// Messages asked for that have neither arrived nor been given up by
    /// the server.
    outstanding: usize,
    /// Something arrived since the last check.
    heard: bool,
    silent: u32,
    check: tokio::time::Interval,
}

impl Pull {
    /// Starts reading `durable` on `stream`, `batch` messages per request.
    pub async fn start(
        client: Client,
        stream: &str,
        durable: &str,
        batch: usize,
    ) -> anyhow::Result<Pull> {
        let inbox = Subject::from(client.new_inbox());
        let messages = client
            .subscribe(inbox.clone())
            .await
            .context("subscribing to the consumer's inbox")?;
        let request = serde_json::to_vec(&serde_json::json!({
            "batch": batch,
            "expires": EXPIRES.as_nanos() as u64,
            "idle_heartbeat": HEARTBEAT.as_nanos() as u64,
        }))?;
        let mut check = tokio::time::interval(HEARTBEAT);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.reset();
        Ok(Pull {
            client,
            messages,
            inbox,
            next_subject: Subject::from(format!("{API}.CONSUMER.MSG.NEXT.{stream}.{durable}")),
            request: Bytes::from(request),
            batch,
            outstanding: 0,
            heard: false,
            silent: 0,
            check,
        })
    }

    /// Waits for what has arrived (at most `limit` messages) and returns its
    /// stream messages, in order. An error, if one came, is returned beside
    /// the stream messages that arrived before it.
    pub async fn next(&mut self, limit: usize) -> (Vec<Message>, Option<anyhow::Error>) {
        let mut arrived = Vec::new();
        let error = self.receive(limit, &mut arrived).await.err();
        (arrived, error)
    }

    async fn receive(&mut self, limit: usize, arrived: &mut Vec<Message>) -> anyhow::Result<()> {
        self.ask().await?;
        loop {
            tokio::select! {
                biased;
                closed = std::future::poll_fn(|cx| super::poll_ready(std::slice::from_mut(&mut self.messages), 0, cx, limit, arrived)) => {
                    if closed {
                        anyhow::bail!("the consumer's inbox subscription ended");
                    }
                    break;
                }
                _ = self.check.tick() => {
                    if self.heard {
                        self.heard = false;
                        self.silent = 0;
                        continue;
                    }
                    self.silent += 1;
                    if self.silent >= SILENT_CHECKS {
                        anyhow::bail!(
                            "nothing from the consumer, not even a heartbeat, for {} s",
                            (HEARTBEAT * self.silent).as_secs()
                        );
                    }
                    // The requests may be gone (a reconnect): ask afresh.
                    self.outstanding = 0;
                    self.ask().await?;
                }
            }
        }
        self.heard = true;
        let mut kept = 0;
        for i in 0..arrived.len() {
            let m = &arrived[i];
            match m.status {
                None | Some(StatusCode::OK) => {
                    self.outstanding = self.outstanding.saturating_sub(1);
                    arrived.swap(kept, i);
                    kept += 1;
                    continue;
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                Some(StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED)
                    if !matches!(
                        m.description.as_deref(),
                        Some("Consumer Deleted" | "Consumer is push based")
                    ) =>
                {
                    let undelivered = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Pending-Messages"))
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or(self.batch);
                    self.outstanding = self.outstanding.saturating_sub(undelivered);
                }
                Some(status) => {
                    let why = format!(
                        "the consumer answered {status}{}",
                        m.description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    );
                    arrived.truncate(kept);
                    anyhow::bail!(why);
                }
            }
        }
        arrived.truncate(kept);
        Ok(())
    }

    /// Keeps more than one batch asked for: a new request goes out when
    /// fewer than a batch are outstanding, so the next batch is on its way
    /// while this one is handled.
    async fn ask(&mut self) -> anyhow::Result<()> {
        while self.outstanding <= self.batch {
            self.client
                .publish_with_reply(
                    self.next_subject.clone(),
                    self.inbox.clone(),
                    self.request.clone(),
                )
                .await
                .context("asking the consumer for messages")?;
            self.outstanding += self.batch;
        }
        Ok(())
    }
}

/// What a stream message's reply subject says about it:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`,
/// or with `<domain>.<account hash>.` before the stream and a token after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckInfo {
    pub stream_sequence: u64,
    /// When the stream stored the message, ns since the epoch.
    pub stored_ns: i64,
    /// Messages the consumer still had for us after this one.
    pub pending: u64,
}

impl AckInfo {
    pub fn parse(reply: &str) -> Option<AckInfo> {
        let rest = reply.strip_prefix("$JS.ACK.")?.as_bytes();
        // One pass for the dots; the short form has 6 (7 tokens), the long
        // one 8 or more.
        let mut dots = [0usize; 12];
        let mut n = 0;
        for d in memchr::memchr_iter(b'.', rest) {
            if n == dots.len() {
                return None;
            }
            dots[n] = d;
            n += 1;
        }
        let first = match n {
            6 => 2,
            8.. => 4,
            _ => return None,
        };
        // Token k runs from after dot k - 1 to dot k (or the end).
        let token = |k: usize| {
            let end = if k < n { dots[k] } else { rest.len() };
            &rest[dots[k - 1] + 1..end]
        };
        let number = |t: &[u8]| -> Option<u64> {
            if t.is_empty() || t.len() > 20 {
                return None;
            }
            t.iter().try_fold(0u64, |n, &b| {
                b.is_ascii_digit()
                    .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
                    .flatten()
            })
        };
        // delivered, stream sequence, consumer sequence, time, pending.
        number(token(first))?;
        let stream_sequence = number(token(first + 1))?;
        number(token(first + 2))?;
        let stored_ns = i64::try_from(number(token(first + 3))?).ok()?;
        let pending = number(token(first + 4))?;
        Some(AckInfo {
            stream_sequence,
            stored_ns,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_of_both_forms_give_sequence_time_and_pending() {
        let short = "$JS.ACK.EVENTS.agg.1.42.40.1764550000123456789.7";
        assert_eq!(
            AckInfo::parse(short),
            Some(AckInfo {
                stream_sequence: 42,
                stored_ns: 1_764_550_000_123_456_789,
                pending: 7
            })
        );
        let long = "$JS.ACK.hub.ACCHASH.EVENTS.agg.2.43.41.1764550000123456789.0.r4nd0m";
        assert_eq!(
            AckInfo::parse(long),
            Some(AckInfo {
                stream_sequence: 43,
                stored_ns: 1_764_550_000_123_456_789,
                pending: 0
            })
        );
        // Without the trailing token.
        let long = "$JS.ACK._.ACCHASH.EVENTS.agg.2.44.41.1764550000123456789.3";
        assert_eq!(AckInfo::parse(long).map(|i| i.stream_sequence), Some(44));
    }

    #[test]
    fn anything_else_is_refused_not_misread() {
        for reply in [
            "",
            "_INBOX.abc",
            "$JS.ACK.EVENTS.agg.1.42.40.17645",
            "$JS.ACK.EVENTS.agg.1.x.40.1764550000123456789.7",
            "$JS.ACK.EVENTS.agg.1..40.1764550000123456789.7",
            "$JS.ACK.EVENTS.agg.1.99999999999999999999999.40.1.7",
            "$JS.ACK.EVENTS.agg.1.42.40.99999999999999999999.7",
        ] {
            assert_eq!(AckInfo::parse(reply), None, "{reply:?}");
        }
    }
}
