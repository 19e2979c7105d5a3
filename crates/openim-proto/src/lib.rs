//! The OpenIM v3 wire protocol, shared by every service and by our own test client.
//!
//! - [`pb`]: protobuf messages and gRPC services generated from `proto/` at build time, with serde
//!   derives that read and write the JSON of OpenIM's REST API.
//! - [`ws`] and [`gob`]: the WebSocket envelope (gob or JSON, optionally gzip).
//! - [`constants`]: request identifiers, session and content types, platforms.

pub mod constants;
pub mod gob;
pub mod json;
pub mod ws;

/// Generated protobuf and gRPC code, one module per OpenIM package.
pub mod pb {
    #![allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
    pub use openim::*;
}
