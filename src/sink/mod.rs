//! Where the engine's output goes: the store (history), the Redis cache
//! (hot reads), the in-process live hub (WebSockets) and the live feed to
//! other instances over NATS.

pub mod cache;
pub mod feed;
pub mod live;
pub mod store;
