//! Online-status subscriptions (WebSocket 2005), as OpenIM's gateway keeps them: a connection
//! subscribes to users and is answered with their online platforms, then pushed a 2005 frame
//! whenever one of them goes online or offline on any platform, at any gateway. A gateway learns
//! of changes at other gateways from their `UserStatusChanged` calls.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Message;
use openim_common::{ImError, rpc};
use openim_proto::constants::req;
use openim_proto::pb::msggateway::UserStatusChangedReq;
use openim_proto::pb::sdkws::{SubUserOnlineStatus, SubUserOnlineStatusElem, SubUserOnlineStatusTips};
use openim_proto::ws::WsResponse;
use prost::Message as _;

use crate::conn::encode;
use crate::{ConnHandle, Gateway};

/// Most users one connection may watch.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 3000;

/// The users one connection watches, kept by its reader task and dropped with it.
#[derive(Default)]
pub(crate) struct Watching(std::collections::HashSet<String>);

impl Gateway {
    /// Applies a 2005 request for `conn` and answers the subscribed users' current platforms.
    pub(crate) async fn subscribe(
        &self,
        conn: &ConnHandle,
        watching: &mut Watching,
        sub: SubUserOnlineStatus,
    ) -> Result<Vec<u8>, ImError> {
        for user in &sub.unsubscribe_user_id {
            if watching.0.remove(user) {
                self.forget(user, conn.id);
            }
        }
        let mut new: Vec<&String> = sub.subscribe_user_id.iter().filter(|u| !watching.0.contains(*u)).collect();
        new.sort_unstable();
        new.dedup();
        if watching.0.len() + new.len() > MAX_SUBSCRIPTIONS {
            return Err(ImError::args(format!("a connection may watch at most {MAX_SUBSCRIPTIONS} users")));
        }
        for user in new {
            self.watchers.entry(user.clone()).or_default().insert(conn.id, conn.clone());
            watching.0.insert(user.clone());
        }
        let online = self.online.online(&sub.subscribe_user_id).await.map_err(openim_common::error::from_store)?;
        let subscribers = sub
            .subscribe_user_id
            .iter()
            .map(|u| SubUserOnlineStatusElem { user_id: u.clone(), online_platform_i_ds: platforms(online.get(u)) })
            .collect();
        Ok(SubUserOnlineStatusTips { subscribers }.encode_to_vec())
    }

    /// Forgets a closed connection's subscriptions.
    pub(crate) fn unsubscribe_all(&self, conn_id: u64, watching: Watching) {
        for user in &watching.0 {
            self.forget(user, conn_id);
        }
    }

    fn forget(&self, user: &str, conn_id: u64) {
        if let Some(mut subs) = self.watchers.get_mut(user) {
            subs.remove(&conn_id);
        }
        self.watchers.remove_if(user, |_, v| v.is_empty());
    }

    /// A user connected or disconnected here: tell this gateway's watchers of the user and every
    /// other gateway.
    pub(crate) async fn status_changed(self: &Arc<Self>, user_id: &str) {
        let platforms = match self.online.online(&[user_id.to_owned()]).await {
            Ok(online) => platforms(online.get(user_id)),
            Err(e) => {
                tracing::warn!(error = %e, %user_id, "Could not read a user's online platforms; watchers are not told.");
                return;
            }
        };
        self.push_status(user_id, &platforms);
        for (id, client) in &self.clients.gateways {
            if *id == self.cfg.advertise {
                continue;
            }
            let mut client = client.clone();
            let req = UserStatusChangedReq { user_id: user_id.to_owned(), platform_i_ds: platforms.clone() };
            let id = id.clone();
            tokio::spawn(async move {
                if let Err(e) = client.user_status_changed(rpc::request(req, "", "")).await {
                    tracing::debug!(gateway = %id, error = %e, "Could not tell a gateway of a status change.");
                }
            });
        }
    }

    /// Pushes a 2005 frame to this gateway's connections watching `user_id`.
    pub(crate) fn push_status(&self, user_id: &str, platforms: &[i32]) {
        let Some(watchers) = self.watchers.get(user_id).map(|w| w.values().cloned().collect::<Vec<_>>()) else {
            return;
        };
        let tips = SubUserOnlineStatusTips {
            subscribers: vec![SubUserOnlineStatusElem {
                user_id: user_id.to_owned(),
                online_platform_i_ds: platforms.to_vec(),
            }],
        };
        let resp = WsResponse {
            req_identifier: req::SUB_USER_ONLINE_STATUS,
            operation_id: crate::push::push_operation_id(),
            data: tips.encode_to_vec().into(),
            ..Default::default()
        };
        let mut frames = HashMap::new();
        for c in watchers {
            let frame = frames.entry((c.encoding, c.gzip)).or_insert_with(|| encode(c.encoding, c.gzip, &resp)).clone();
            c.offer(Message::Binary(frame));
        }
    }
}

/// The sorted, distinct platforms of a user's online entries.
fn platforms(entries: Option<&Vec<(i32, String)>>) -> Vec<i32> {
    let mut p: Vec<i32> = entries.map(|v| v.iter().map(|(p, _)| *p).collect()).unwrap_or_default();
    p.sort_unstable();
    p.dedup();
    p
}
