//! Clients for end-to-end tests: [`client::Client`] speaks OpenIM's WebSocket protocol (gob or JSON
//! envelope, optional gzip), [`rest::Rest`] its REST API with an administrator token.

pub mod client;
pub mod rest;
pub mod servers;
pub mod tls;

pub use client::{Client, text_content};
pub use rest::Rest;
