//! EventFlow: a real-time statistics aggregator for webinars and campaigns.
//!
//! # Layout
//!
//! - [`event`] — the wire format (DESIGN §5): typed events, validation that
//!   names the field and the rule, IP masking; one decode path for every
//!   source.
//! - [`engine`] — the synchronous core: clocks (DESIGN §2), presence and
//!   engagement per webinar (DESIGN §3), final buckets out. No I/O, no clock
//!   of its own.
//!   - [`engine::presence`] — one webinar's viewer intervals and open bucket.
//!   - [`engine::bucket`] — the emitted statistics and their replay format.
//! - [`replay`] — `eventflow replay`: a log file in, final buckets out, in
//!   bounded memory.
//! - `main.rs` — the command line; nothing but argument parsing and wiring.

pub mod engine;
pub mod event;
pub mod replay;
