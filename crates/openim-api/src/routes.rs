//! The route table: path → who may call it → RPC method.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;

use crate::Api;
use crate::envelope::{Access, forward};

/// Declares `POST path` routes that forward the JSON body to `service.method`; also lists each
/// path in `$paths`.
macro_rules! forward_routes {
    ($router:expr, $paths:ident; $($path:literal => $access:ident, $service:ident . $method:ident;)*) => {{
        let mut router = $router;
        $(
            $paths.push($path);
            router = router.route($path, post(|State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes| async move {
                forward(&api, &headers, &body, Access::$access, |c, r| async move { c.$service.clone().$method(r).await }).await
            }));
        )*
        router
    }};
}

/// Every path the router serves.
pub fn paths() -> Vec<&'static str> {
    table().1
}

pub fn router(api: Arc<Api>) -> Router {
    table().0.with_state(api)
}

/// The route table: the router and the list of its paths, built together so they cannot differ.
fn table() -> (Router<Arc<Api>>, Vec<&'static str>) {
    let mut paths = Vec::new();
    let router = forward_routes!(Router::new(), paths;
        "/auth/get_user_token" => Admin, auth.get_user_token;
        "/auth/parse_token" => Public, auth.parse_token;
        "/auth/force_logout" => Admin, auth.force_logout;

        "/user/user_register" => Admin, user.user_register;
        "/user/get_users_info" => User, user.get_designate_users;
        "/user/update_user_info_ex" => User, user.update_user_info_ex;
        "/user/update_user_info" => User, user.update_user_info;
        "/user/set_global_msg_recv_opt" => User, user.set_global_recv_message_opt;
        "/user/account_check" => Admin, user.account_check;
        "/user/get_all_users_uid" => Admin, user.get_all_user_id;
        "/user/get_users" => Admin, user.get_pagination_users;
        "/user/get_users_status" => User, user.get_user_status;
        "/user/subscribe_users_status" => User, user.subscribe_or_cancel_users_status;
        "/user/get_subscribe_users_status" => User, user.get_subscribe_users_status;
        "/user/process_user_command_add" => User, user.process_user_command_add;
        "/user/process_user_command_delete" => User, user.process_user_command_delete;
        "/user/process_user_command_update" => User, user.process_user_command_update;
        "/user/process_user_command_get" => User, user.process_user_command_get;
        "/user/process_user_command_get_all" => User, user.process_user_command_get_all;

        "/msg/newest_seq" => User, msg.get_max_seq;
        "/msg/pull_msg_by_seq" => User, msg.pull_message_by_seqs;
        "/msg/get_conversations_has_read_and_max_seq" => User, msg.get_conversations_has_read_and_max_seq;
        "/msg/mark_conversation_as_read" => User, msg.mark_conversation_as_read;
        "/msg/mark_msgs_as_read" => User, msg.mark_msgs_as_read;
        "/msg/set_conversation_has_read_seq" => User, msg.set_conversation_has_read_seq;
        "/msg/get_server_time" => User, msg.get_server_time;
        "/msg/revoke_msg" => User, msg.revoke_msg;
        "/msg/delete_msgs" => User, msg.delete_msgs;
        "/msg/clear_conversation_msg" => User, msg.clear_conversations_msg;
        "/msg/user_clear_all_msg" => User, msg.user_clear_all_msg;
        // Sic: OpenIM's path is spelt this way.
        "/msg/delete_msg_phsical_by_seq" => User, msg.delete_msg_physical_by_seq;
        "/msg/delete_msg_physical" => Admin, msg.delete_msg_physical;
        "/msg/check_msg_is_send_success" => User, msg.get_send_msg_status;
        "/msg/search_msg" => Admin, msg.search_message;

        "/friend/import_friend" => Admin, friend.import_friends;
        "/friend/get_designated_friends" => User, friend.get_designated_friends;
        "/friend/get_friend_list" => User, friend.get_pagination_friends;
        "/friend/get_friend_id" => User, friend.get_friend_i_ds;
        "/friend/is_friend" => User, friend.is_friend;
        "/friend/get_incremental_friends" => User, friend.get_incremental_friends;
        "/friend/get_full_friend_user_ids" => User, friend.get_full_friend_user_i_ds;
        "/friend/add_friend" => User, friend.apply_to_add_friend;
        "/friend/add_friend_response" => User, friend.respond_friend_apply;
        "/friend/get_friend_apply_list" => User, friend.get_pagination_friends_apply_to;
        "/friend/get_self_friend_apply_list" => User, friend.get_pagination_friends_apply_from;
        "/friend/get_designated_friend_apply" => User, friend.get_designated_friends_apply;
        "/friend/get_self_unhandled_apply_count" => User, friend.get_self_unhandled_apply_count;
        "/friend/delete_friend" => User, friend.delete_friend;
        "/friend/update_friends" => User, friend.update_friends;
        "/friend/set_friend_remark" => User, friend.set_friend_remark;
        "/friend/get_specified_friends_info" => User, friend.get_specified_friends_info;
        "/friend/add_black" => User, friend.add_black;
        "/friend/remove_black" => User, friend.remove_black;
        "/friend/get_black_list" => User, friend.get_pagination_blacks;
        "/friend/get_specified_blacks" => User, friend.get_specified_blacks;
        "/friend/get_incremental_blacks" => User, friend.get_incremental_blacks;

        "/group/create_group" => User, group.create_group;
        "/group/invite_user_to_group" => User, group.invite_user_to_group;
        "/group/get_group_member_list" => User, group.get_group_member_list;
        "/group/get_group_members_info" => User, group.get_group_members_info;
        "/group/get_groups_info" => User, group.get_groups_info;
        "/group/get_joined_group_list" => User, group.get_joined_group_list;
        "/group/get_incremental_join_groups" => User, group.get_incremental_join_group;
        "/group/get_incremental_group_members" => User, group.get_incremental_group_member;
        "/group/get_incremental_group_members_batch" => User, group.batch_get_incremental_group_member;
        "/group/get_full_group_member_user_ids" => User, group.get_full_group_member_user_i_ds;
        "/group/get_full_join_group_ids" => User, group.get_full_join_group_i_ds;
        "/group/mute_group_member" => User, group.mute_group_member;
        "/group/cancel_mute_group_member" => User, group.cancel_mute_group_member;
        "/group/mute_group" => User, group.mute_group;
        "/group/cancel_mute_group" => User, group.cancel_mute_group;
        "/group/set_group_info" => User, group.set_group_info;
        "/group/set_group_info_ex" => User, group.set_group_info_ex;
        "/group/transfer_group" => User, group.transfer_group_owner;
        "/group/get_group_member_user_id" => User, group.get_group_member_user_i_ds;
        "/group/join_group" => User, group.join_group;
        "/group/quit_group" => User, group.quit_group;
        "/group/group_application_response" => User, group.group_application_response;
        "/group/get_recv_group_applicationList" => User, group.get_group_application_list;
        "/group/get_user_req_group_applicationList" => User, group.get_user_req_application_list;
        "/group/get_group_users_req_application_list" => User, group.get_group_users_req_application_list;
        "/group/get_specified_user_group_request_info" => User, group.get_specified_user_group_request_info;
        "/group/get_group_application_unhandled_count" => User, group.get_group_application_unhandled_count;
        "/group/kick_group" => User, group.kick_group_member;
        "/group/dismiss_group" => User, group.dismiss_group;
        "/group/set_group_member_info" => User, group.set_group_member_info;
        "/group/get_group_abstract_info" => User, group.get_group_abstract_info;
        "/group/get_groups" => Admin, group.get_groups;

        "/conversation/get_conversation" => User, conversation.get_conversation;
        "/conversation/get_conversations" => User, conversation.get_conversations;
        "/conversation/get_all_conversations" => User, conversation.get_all_conversations;
        "/conversation/get_sorted_conversation_list" => User, conversation.get_sorted_conversation_list;
        "/conversation/get_incremental_conversations" => User, conversation.get_incremental_conversation;
        "/conversation/get_full_conversation_ids" => User, conversation.get_full_owner_conversation_i_ds;
        "/conversation/get_not_notify_conversation_ids" => User, conversation.get_not_notify_conversation_i_ds;
        "/conversation/get_pinned_conversation_ids" => User, conversation.get_pinned_conversation_i_ds;
        "/conversation/set_conversations" => User, conversation.set_conversations;
        "/conversation/get_owner_conversation" => User, conversation.get_owner_conversation;
        "/conversation/get_conversation_offline_push_user_ids" => Admin, conversation.get_conversation_offline_push_user_i_ds;

        "/third/fcm_update_token" => User, third.fcm_update_token;
        "/third/set_app_badge" => User, third.set_app_badge;
        "/third/logs/upload" => User, third.upload_logs;
        "/third/logs/delete" => Admin, third.delete_logs;
        "/third/logs/search" => Admin, third.search_logs;
    );
    use crate::object;
    let own: [(&'static str, axum::routing::MethodRouter<Arc<Api>>); 16] = [
        ("/auth/get_admin_token", post(get_admin_token)),
        ("/msg/send_msg", post(send_msg)),
        ("/msg/send_business_notification", post(business_notification)),
        ("/msg/batch_send_msg", post(batch_send_msg)),
        ("/user/get_users_online_status", post(online_status)),
        ("/user/get_users_online_token_detail", post(token_detail)),
        ("/jssdk/get_conversations", post(crate::jssdk::get_conversations)),
        ("/jssdk/get_active_conversations", post(crate::jssdk::get_active_conversations)),
        ("/object/part_limit", post(object::part_limit)),
        ("/object/part_size", post(object::part_size)),
        ("/object/initiate_multipart_upload", post(object::initiate)),
        ("/object/auth_sign", post(object::auth_sign)),
        ("/object/complete_multipart_upload", post(object::complete)),
        ("/object/access_url", post(object::access_url)),
        ("/object/initiate_form_data", post(object::initiate_form)),
        ("/object/complete_form_data", post(object::complete_form)),
    ];
    let mut router = router;
    for (path, handler) in own {
        paths.push(path);
        router = router.route(path, handler);
    }
    // OpenIM's gin wildcard `/object/*name`; other methods answer 404 like any unserved route.
    paths.push("/object/*name");
    router = router.route("/object/{*name}", get(object::redirect).fallback(object::not_found));
    (router, paths)
}

/// Forwarded with the client's address, which `openim-rpc-auth` rate-limits failures by (and
/// which alone may use the published trial secret when it is loopback).
async fn get_admin_token(
    State(api): State<Arc<Api>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    forward(&api, &headers, &body, Access::Public, |c, mut r| async move {
        if let Some(ip) = peer {
            openim_common::rpc::set_client_addr(&mut r, ip);
        }
        c.auth.clone().get_admin_token(r).await
    })
    .await
}

async fn send_msg(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::send::send_msg(&api, &headers, &body).await
}

async fn business_notification(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::send::send_business_notification(&api, &headers, &body).await
}

async fn batch_send_msg(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::send::batch_send_msg(&api, &headers, &body).await
}

async fn online_status(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::online::online_status(&api, &headers, &body).await
}

async fn token_detail(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::online::token_detail(&api, &headers, &body).await
}

#[cfg(test)]
mod tests;
