//! The route table: path → who may call it → RPC method.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;

use crate::Api;
use crate::envelope::{Access, forward};

/// Declares `POST path` routes that forward the JSON body to `service.method`.
macro_rules! forward_routes {
    ($router:expr; $($path:literal => $access:ident, $service:ident . $method:ident;)*) => {{
        let mut router = $router;
        $(
            router = router.route($path, post(|State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes| async move {
                forward(&api, &headers, &body, Access::$access, |c, r| async move { c.$service.clone().$method(r).await }).await
            }));
        )*
        router
    }};
}

pub fn router(api: Arc<Api>) -> Router {
    let router = forward_routes!(Router::new();
        "/auth/get_admin_token" => Public, auth.get_admin_token;
        "/auth/get_user_token" => Admin, auth.get_user_token;
        "/auth/parse_token" => Public, auth.parse_token;
        "/auth/force_logout" => Admin, auth.force_logout;

        "/user/user_register" => Admin, user.user_register;
        "/user/get_users_info" => User, user.get_designate_users;
        "/user/update_user_info_ex" => User, user.update_user_info_ex;

        "/msg/newest_seq" => User, msg.get_max_seq;
        "/msg/pull_msg_by_seq" => User, msg.pull_message_by_seqs;
        "/msg/get_conversations_has_read_and_max_seq" => User, msg.get_conversations_has_read_and_max_seq;
        "/msg/mark_conversation_as_read" => User, msg.mark_conversation_as_read;
        "/msg/revoke_msg" => User, msg.revoke_msg;
        "/msg/delete_msgs" => User, msg.delete_msgs;
        "/msg/clear_conversation_msg" => User, msg.clear_conversations_msg;
        "/msg/user_clear_all_msg" => User, msg.user_clear_all_msg;
        // Sic: OpenIM's path is spelt this way.
        "/msg/delete_msg_phsical_by_seq" => User, msg.delete_msg_physical_by_seq;

        "/friend/import_friend" => Admin, friend.import_friends;
        "/friend/get_designated_friends" => User, friend.get_designated_friends;
        "/friend/get_friend_list" => User, friend.get_pagination_friends;
        "/friend/get_friend_id" => User, friend.get_friend_i_ds;
        "/friend/is_friend" => User, friend.is_friend;
        "/friend/get_incremental_friends" => User, friend.get_incremental_friends;
        "/friend/get_full_friend_user_ids" => User, friend.get_full_friend_user_i_ds;

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

        "/conversation/get_conversation" => User, conversation.get_conversation;
        "/conversation/get_conversations" => User, conversation.get_conversations;
        "/conversation/get_all_conversations" => User, conversation.get_all_conversations;
        "/conversation/get_sorted_conversation_list" => User, conversation.get_sorted_conversation_list;
        "/conversation/get_incremental_conversations" => User, conversation.get_incremental_conversation;
        "/conversation/get_full_conversation_ids" => User, conversation.get_full_owner_conversation_i_ds;
        "/conversation/get_not_notify_conversation_ids" => User, conversation.get_not_notify_conversation_i_ds;
        "/conversation/get_pinned_conversation_ids" => User, conversation.get_pinned_conversation_i_ds;
    );
    router
        .route("/msg/send_msg", post(send_msg))
        .route("/user/get_users_online_status", post(online_status))
        .route("/jssdk/get_conversations", post(crate::jssdk::get_conversations))
        .route("/jssdk/get_active_conversations", post(crate::jssdk::get_active_conversations))
        .with_state(api)
}

async fn send_msg(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::send::send_msg(&api, &headers, &body).await
}

async fn online_status(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    crate::send::online_status(&api, &headers, &body).await
}
