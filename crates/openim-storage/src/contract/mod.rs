//! Contract tests every storage adapter must pass. Each function exercises one trait through its
//! public behaviour and panics with a message on the first violation; adapters' test suites call
//! them (the embedded ones in this crate's `tests/`, production ones against real servers).
//! IDs carry a random prefix so runs can share a database.

mod groups;
mod infra;
mod messages;
mod relations;

pub use groups::*;
pub use infra::*;
pub use messages::*;
pub use relations::*;

fn prefix() -> String {
    format!("t{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
