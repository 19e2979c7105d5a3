//! Plumbing every OpenIM service shares: configuration, OpenIM error codes, tracing, graceful
//! shutdown, the health/metrics HTTP endpoints, tokens, conversation IDs and RPC clients.

pub mod bus;
pub mod config;
pub mod error;
pub mod ids;
pub mod limits;
pub mod notify;
pub mod observe;
pub mod rpc;
pub mod secrets;
pub mod serve;
pub mod service_auth;
pub mod shutdown;
pub mod token;
pub mod webhook;

pub use error::{ErrCode, ImError, ImResult};
