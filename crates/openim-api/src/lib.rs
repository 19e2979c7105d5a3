//! `openim-api`: OpenIM's REST API. Every route is a POST whose JSON body is the RPC request
//! (field names as in the .proto files), with `operationID` and `token` headers; every answer is
//! HTTP 200 with the envelope `{errCode, errMsg, errDlt, data}`. Handlers only authenticate,
//! decode, forward to an RPC service and encode — no business logic lives here.

mod envelope;
mod jssdk;
mod object;
mod online;
mod routes;
mod send;

use std::sync::Arc;

use axum::Router;
use openim_common::config::Share;
use openim_common::rpc::Clients;

pub use envelope::Envelope;
pub use routes::paths;

pub struct Api {
    share: Share,
    clients: Clients,
    /// `object.local.external_url`: the address clients reach the API at, for object URLs;
    /// empty to take it from each request.
    external_url: String,
}

/// What the API serves of object storage besides `/object/*`.
#[derive(Default)]
pub struct ObjectRoutes {
    /// See [`Api::external_url`].
    pub external_url: String,
    /// The embedded store, whose presigned URLs the API serves; `None` with an external store.
    pub local: Option<Arc<openim_object::local::LocalBlobs>>,
}

/// The REST router. It answers CORS as OpenIM's API does (any origin, method and header; no
/// credentials), since web apps call it from their own origin: a browser otherwise refuses every
/// call. Tokens travel in a header, never in cookies, so allowing any origin exposes nothing.
pub fn router(share: Share, clients: Clients, objects: ObjectRoutes) -> Router {
    use tower_http::cors::{Any, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .max_age(std::time::Duration::from_secs(172_800));
    let mut router = routes::router(Arc::new(Api { share, clients, external_url: objects.external_url }));
    if let Some(local) = objects.local {
        router = router.merge(openim_object::local::router(local));
    }
    router.layer(cors)
}
