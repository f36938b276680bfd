//! Where events come from: the local event log (embedded mode), NATS
//! (JetStream or core subscriptions), and the spool that carries HTTP
//! ingest into NATS through outages.

pub mod eventlog;
pub mod nats;
pub mod spool;
