//! The administrators' views of who is connected where: `/user/get_users_online_status` and
//! `/user/get_users_online_token_detail`. Both ask every gateway about its own connections and
//! merge the answers, as OpenIM's API does; a gateway that fails or hangs is left out.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use openim_common::ImError;
use openim_common::rpc;
use openim_proto::pb::msggateway::get_users_online_status_resp::SuccessDetail;
use openim_proto::pb::msggateway::{GetUsersOnlineStatusReq, SingleDetail, SinglePlatformToken};

use crate::Api;
use crate::envelope::{Access, Envelope, parse_json};

/// Most users one call asks about.
const MAX_USERS: usize = 1_000;
/// How long one gateway may take to answer.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);

/// Each asked user's connections over all gateways, in the order asked.
async fn connections(
    api: &Api,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<(String, Vec<SuccessDetail>)>, ImError> {
    let caller = api.authenticate(headers, Access::Admin).await?;
    let req: GetUsersOnlineStatusReq = parse_json(body)?;
    if req.user_i_ds.is_empty() || req.user_i_ds.len() > MAX_USERS {
        return Err(ImError::args(format!(
            "userIDs has {} entries; 1 to {MAX_USERS} are allowed",
            req.user_i_ds.len()
        )));
    }
    let calls = api.clients.gateways.iter().map(|(addr, client)| {
        let mut client = client.clone();
        let req = rpc::request(req.clone(), &caller.user_id, &caller.operation_id);
        async move {
            match tokio::time::timeout(GATEWAY_TIMEOUT, client.get_users_online_status(req)).await {
                Ok(Ok(resp)) => resp.into_inner().success_result,
                Ok(Err(e)) => {
                    tracing::warn!(gateway = %addr, error = %e, "A gateway did not say who is connected to it.");
                    Vec::new()
                }
                Err(_) => {
                    tracing::warn!(gateway = %addr, "A gateway did not say in time who is connected to it.");
                    Vec::new()
                }
            }
        }
    });
    let mut found: std::collections::HashMap<String, Vec<SuccessDetail>> = std::collections::HashMap::new();
    for result in futures::future::join_all(calls).await.into_iter().flatten() {
        found.entry(result.user_id).or_default().extend(result.detail_platform_status);
    }
    let mut seen = std::collections::HashSet::new();
    Ok(req
        .user_i_ds
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .map(|u| {
            let conns = found.remove(&u).unwrap_or_default();
            (u, conns)
        })
        .collect())
}

/// Every asked user with status 1 and one entry per connection, or status 0.
pub async fn online_status(api: &Api, headers: &HeaderMap, body: &Bytes) -> Response {
    Envelope::from_result(connections(api, headers, body).await.map(|users| {
        users
            .into_iter()
            .map(|(user, conns)| {
                serde_json::json!({
                    "userID": user,
                    "status": i32::from(!conns.is_empty()),
                    // OpenIM leaves the list out (null) for a user with no connection.
                    "detailPlatformStatus": if conns.is_empty() { serde_json::Value::Null } else { serde_json::json!(conns) },
                })
            })
            .collect()
    }))
}

/// The connected users among those asked, with their connections' tokens per platform.
pub async fn token_detail(api: &Api, headers: &HeaderMap, body: &Bytes) -> Response {
    Envelope::from_result(connections(api, headers, body).await.map(|users| {
        let details: Vec<SingleDetail> = users
            .into_iter()
            .filter(|(_, conns)| !conns.is_empty())
            .map(|(user_id, conns)| {
                let mut by_platform: BTreeMap<i32, Vec<String>> = BTreeMap::new();
                for c in conns {
                    by_platform.entry(c.platform_id).or_default().push(c.token);
                }
                SingleDetail {
                    user_id,
                    status: 1,
                    single_platform_token: by_platform
                        .into_iter()
                        .map(|(platform_id, token)| SinglePlatformToken {
                            platform_id,
                            total: token.len() as i32,
                            token,
                        })
                        .collect(),
                }
            })
            .collect();
        serde_json::json!(details)
    }))
}
