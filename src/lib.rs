//! EventFlow: a real-time statistics aggregator for webinars and campaigns.
//! `DESIGN §n` in these docs is section n of `docs/DESIGN.md`, the contract.
//!
//! # Layout
//!
//! The tree follows the data: sources → engine → sinks → HTTP, with the
//! shared types below them all. Imports only point down that way (a sink
//! may use a source's subject names; nothing below imports what is above).
//!
//! - Shared, at the bottom:
//!   - [`event`] — the wire format (DESIGN §5): typed events, validation
//!     that names the field and the rule, IP masking; one decode path for
//!     every source.
//!   - [`config`] — layered settings (DESIGN §10); [`partition`] — which
//!     partition an event belongs to; [`health`] — the readiness every part
//!     reports into; [`metrics`] — Prometheus metrics; [`auth`] — signed
//!     read tokens; [`util`] — clocks, backoff, small helpers;
//!     [`datadir`] — one process per data directory.
//! - [`source`] — where events come from:
//!   - [`source::eventlog`] — the local event log with group commit: the
//!     source of truth in embedded mode.
//!   - [`source::nats`] — NATS: the JetStream stream as the event log (or
//!     core subscriptions), subjects, publishing, the dead-letter stream;
//!     [`source::nats::pull`] reads the stream at the protocol level.
//!   - [`source::spool`] — HTTP ingest's way into NATS, the local spool for
//!     events NATS could not take, its forwarder, and the rule that keeps
//!     one order from `202` to stream.
//! - [`engine`] — the synchronous core: clocks (DESIGN §2), presence and
//!   engagement per webinar (DESIGN §3), final buckets out. No I/O, no clock
//!   of its own.
//!   - [`engine::presence`] — one webinar's viewer intervals and open windows.
//!   - [`engine::bucket`] — the emitted statistics and their replay format.
//!   - [`engine::campaign`] — visits, conversions, page views and
//!     attribution per client, and the campaign answers of DESIGN §6.
//!   - [`engine::report`] — the campaign answers' types, which the API
//!     description is derived from.
//! - [`sink`] — where the engine's output goes:
//!   - [`sink::store`] — final buckets in SQLite or Postgres (one schema,
//!     `migrations/`).
//!   - [`sink::cache`] — Redis as the hot cache of live counts and recent
//!     buckets.
//!   - [`sink::live`] — the hub fanning live counts out to readers.
//!   - [`sink::feed`] — live counts, states and buckets published on NATS
//!     for other instances.
//! - [`pipeline`] — the engine thread following its source and handing its
//!   output to the sinks; the store writer; checkpoints and their
//!   acknowledgement to the stream; a partition's lease as its writers see
//!   it.
//! - [`cluster`] — several instances sharing the partitions (DESIGN §8):
//!   leases, fencing, takeover, reads of other instances' partitions.
//! - [`http`] — ingest, reads, WebSockets, health, metrics, dashboard;
//!   [`http::serve`] serves them under the connection limits and timeouts
//!   that keep sockets from starving the log and the store.
//! - [`app`] — wiring and orderly shutdown; [`demo`] — a simulated audience.
//! - Offline commands: [`replay`] — `eventflow replay`, a log file in, final
//!   buckets out, in bounded memory; [`restore`] — `eventflow restore`,
//!   logs (ours, or the web app's page-view log) into the stores, as a
//!   replay computes them.
//! - `main.rs` — the command line; nothing but argument parsing and wiring.

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod datadir;
pub mod demo;
pub mod engine;
pub mod event;
pub mod health;
pub mod http;
pub mod metrics;
pub mod partition;
pub mod pipeline;
pub mod replay;
pub mod restore;
pub mod sink;
pub mod source;
pub mod util;
