//! `/jssdk/*`: conversation lists assembled for the JS SDK in one call. The body may be JSON or
//! protobuf (`Content-Type: application/x-protobuf`); a protobuf request gets the envelope with
//! `data` = base64 of the protobuf answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use openim_common::ImError;
use openim_common::{limits, rpc};
use openim_proto::pb::conversation::GetConversationsReq as ConvReq;
use openim_proto::pb::group::GetGroupsInfoReq;
use openim_proto::pb::jssdk::{self, ConversationMsg};
use openim_proto::pb::msg::{GetConversationsHasReadAndMaxSeqReq, GetLastMessageReq};
use openim_proto::pb::relation::{FriendInfoOnly, GetDesignatedFriendsReq};
use openim_proto::pb::user::GetDesignateUsersReq;

use crate::Api;
use crate::envelope::{Access, Caller, Envelope, parse_json};

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf") || v.starts_with("application/protobuf"))
}

fn decode<T: prost::Message + Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ImError> {
    if is_protobuf(headers) {
        T::decode(body.as_ref()).map_err(|e| ImError::args(format!("protobuf body: {e}")))
    } else {
        parse_json(body)
    }
}

fn answer<T: prost::Message + serde::Serialize>(headers: &HeaderMap, result: Result<T, ImError>) -> Response {
    match result {
        Ok(resp) if is_protobuf(headers) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(resp.encode_to_vec());
            Envelope::ok(Some(serde_json::Value::String(b64)))
        }
        Ok(resp) => Envelope::ok(Some(serde_json::to_value(&resp).unwrap_or_default())),
        Err(e) => Envelope::err(&e),
    }
}

pub async fn get_conversations(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = api.authenticate(&headers, Access::User).await?;
        let req: jssdk::GetConversationsReq = decode(&headers, &body)?;
        let owner = owner(&api, caller, &req.owner_user_id)?;
        let (unread_count, conversations) = assemble(&api, &owner, req.conversation_i_ds).await?;
        Ok(jssdk::GetConversationsResp { unread_count, conversations })
    }
    .await;
    answer(&headers, result)
}

pub async fn get_active_conversations(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let caller = api.authenticate(&headers, Access::User).await?;
        let req: jssdk::GetActiveConversationsReq = decode(&headers, &body)?;
        let count = if req.count <= 0 || req.count > 500 { 100 } else { req.count as usize };
        let owner = owner(&api, caller, &req.owner_user_id)?;
        let (unread_count, mut conversations) = assemble(&api, &owner, Vec::new()).await?;
        let pinned = |c: &ConversationMsg| c.conversation.as_ref().is_some_and(|c| c.is_pinned);
        let last = |c: &ConversationMsg| c.last_msg.as_ref().map(|m| m.send_time).unwrap_or(0);
        conversations.sort_by_key(|c| (std::cmp::Reverse(pinned(c)), std::cmp::Reverse(last(c))));
        conversations.truncate(count);
        Ok(jssdk::GetActiveConversationsResp { unread_count, conversations })
    }
    .await;
    answer(&headers, result)
}

/// The caller's conversations (all, or the given IDs) with last message, seqs and the peer user,
/// friend or group; and the total unread count.
/// Whose conversations to answer: `ownerUserID` when it is the caller or the caller is an
/// administrator (empty means the caller), as OpenIM's `CheckAccess` decides.
fn owner(api: &Api, caller: Caller, owner_user_id: &str) -> Result<Caller, ImError> {
    if owner_user_id.is_empty() || owner_user_id == caller.user_id {
        return Ok(caller);
    }
    if !api.share.is_admin(&caller.user_id) {
        return Err(ImError::no_permission(format!(
            "ownerUserID {owner_user_id} is not the token's user {}",
            caller.user_id
        )));
    }
    Ok(Caller { user_id: owner_user_id.to_owned(), operation_id: caller.operation_id })
}

/// `m` as a request of the caller.
fn as_caller<T>(caller: &Caller, m: T) -> tonic::Request<T> {
    rpc::request(m, &caller.user_id, &caller.operation_id)
}

async fn assemble(api: &Api, caller: &Caller, ids: Vec<String>) -> Result<(i64, Vec<ConversationMsg>), ImError> {
    let c = &api.clients;
    let convs = if ids.is_empty() {
        let all = openim_proto::pb::conversation::GetAllConversationsReq { owner_user_id: caller.user_id.clone() };
        c.conversation.clone().get_all_conversations(as_caller(caller, all)).await?.into_inner().conversations
    } else {
        let some = ConvReq { owner_user_id: caller.user_id.clone(), conversation_i_ds: ids };
        c.conversation.clone().get_conversations(as_caller(caller, some)).await?.into_inner().conversations
    };
    if convs.is_empty() {
        return Ok((0, Vec::new()));
    }
    // Every list goes to the services in chunks within their limits: a user may have more
    // conversations, peers and groups than one request may name.
    let conv_ids: Vec<String> = convs.iter().map(|c| c.conversation_id.clone()).collect();
    let mut seqs = HashMap::new();
    let mut last = HashMap::new();
    for chunk in conv_ids.chunks(limits::MAX_CONVERSATION_IDS) {
        let r = GetConversationsHasReadAndMaxSeqReq {
            user_id: caller.user_id.clone(),
            conversation_i_ds: chunk.to_vec(),
            return_pinned: false,
        };
        seqs.extend(
            c.msg.clone().get_conversations_has_read_and_max_seq(as_caller(caller, r)).await?.into_inner().seqs,
        );
        let r = GetLastMessageReq { user_id: caller.user_id.clone(), conversation_i_ds: chunk.to_vec() };
        last.extend(c.msg.clone().get_last_message(as_caller(caller, r)).await?.into_inner().msgs);
    }

    let peers: Vec<String> = convs.iter().filter(|c| !c.user_id.is_empty()).map(|c| c.user_id.clone()).collect();
    let groups: Vec<String> = convs.iter().filter(|c| !c.group_id.is_empty()).map(|c| c.group_id.clone()).collect();
    let mut users = HashMap::new();
    let mut friends: HashMap<String, FriendInfoOnly> = HashMap::new();
    for chunk in peers.chunks(limits::MAX_IDS) {
        let r = GetDesignateUsersReq { user_i_ds: chunk.to_vec() };
        let found = c.user.clone().get_designate_users(as_caller(caller, r)).await?.into_inner();
        users.extend(found.users_info.into_iter().map(|u| (u.user_id.clone(), u)));
        let r = GetDesignatedFriendsReq { owner_user_id: caller.user_id.clone(), friend_user_i_ds: chunk.to_vec() };
        let found = c.friend.clone().get_designated_friends(as_caller(caller, r)).await?.into_inner();
        friends.extend(found.friends_info.into_iter().filter_map(|f| {
            let id = f.friend_user.as_ref()?.user_id.clone();
            Some((
                id.clone(),
                FriendInfoOnly {
                    owner_user_id: f.owner_user_id,
                    friend_user_id: id,
                    remark: f.remark,
                    create_time: f.create_time,
                    add_source: f.add_source,
                    operator_user_id: f.operator_user_id,
                    ex: f.ex,
                    is_pinned: f.is_pinned,
                },
            ))
        }));
    }
    let mut group_infos = HashMap::new();
    for chunk in groups.chunks(limits::MAX_IDS) {
        let r = GetGroupsInfoReq { group_i_ds: chunk.to_vec() };
        let found = c.group.clone().get_groups_info(as_caller(caller, r)).await?.into_inner();
        group_infos.extend(found.group_infos.into_iter().map(|g| (g.group_id.clone(), g)));
    }

    let mut unread = 0;
    let out = convs
        .into_iter()
        .map(|conv| {
            let s = seqs.get(&conv.conversation_id).cloned().unwrap_or_default();
            unread += (s.max_seq - s.has_read_seq).max(0);
            ConversationMsg {
                last_msg: last.remove(&conv.conversation_id),
                user: users.get(&conv.user_id).cloned(),
                friend: friends.get(&conv.user_id).cloned(),
                group: group_infos.get(&conv.group_id).cloned(),
                max_seq: s.max_seq,
                read_seq: s.has_read_seq,
                conversation: Some(conv),
            }
        })
        .collect();
    Ok((unread, out))
}
