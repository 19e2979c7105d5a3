//! `openim-api`: OpenIM's REST API. Every route is a POST whose JSON body is the RPC request
//! (field names as in the .proto files), with `operationID` and `token` headers; every answer is
//! HTTP 200 with the envelope `{errCode, errMsg, errDlt, data}`. Handlers only authenticate,
//! decode, forward to an RPC service and encode — no business logic lives here.

mod envelope;
mod jssdk;
mod routes;
mod send;

use std::sync::Arc;

use axum::Router;
use openim_common::config::Share;
use openim_common::rpc::Clients;

pub use envelope::Envelope;

pub struct Api {
    share: Share,
    clients: Clients,
}

/// The REST router.
pub fn router(share: Share, clients: Clients) -> Router {
    routes::router(Arc::new(Api { share, clients }))
}
