//! Integration tests of the service, each through [`helpers::spawn_app`].

mod assets;
mod authz;
mod bounds;
mod cache;
mod campaigns;
mod cluster;
mod docs;
mod faults;
mod helpers;
mod ingest;
mod limits;
mod live;
mod nats;
mod ops;
mod reads;
mod restart;
mod secrets;
