//! Friend applications, as OpenIM v3.8 runs them: one application per ordered pair (a new one
//! replaces the last), answered by the recipient; accepting makes the two friends both ways and
//! settles an application the other way too.

use openim_common::error::store_status;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, rpc};
use openim_proto::pb::relation;
use openim_proto::pb::sdkws;
use openim_storage::{Friend, FriendRequest, StoreError, handle_result};
use serde_json::json;
use tonic::{Request, Status};

use crate::{FriendService, add_source, limits};

impl FriendService {
    pub(crate) async fn apply(&self, req: Request<relation::ApplyToAddFriendReq>) -> Result<(), Status> {
        let operation_id = rpc::operation_id(&req);
        let r = req.get_ref();
        rpc::check_self_or_admin(&req, &self.share, &r.from_user_id)?;
        limits::text("reqMsg", &r.req_msg, limits::REQ_MSG)?;
        limits::text("ex", &r.ex, limits::EX)?;
        if r.from_user_id == r.to_user_id {
            return Err(ImError::new(ErrCode::CAN_NOT_ADD_YOURSELF, "cannot apply to befriend yourself").into());
        }
        let cfg = self.hooks.config();
        let body = json!({"fromUserID": r.from_user_id, "toUserID": r.to_user_id, "reqMsg": r.req_msg, "ex": r.ex});
        self.hooks
            .check("beforeAddFriend", &cfg.before_add_friend, "callbackBeforeAddFriendCommand", body, &operation_id)
            .await?;
        self.check_users(&[&r.from_user_id, &r.to_user_id]).await?;
        let (in1, in2) = self.are_friends(&r.from_user_id, &r.to_user_id).await?;
        if in1 && in2 {
            return Err(ImError::new(
                ErrCode::RELATIONSHIP_ALREADY,
                format!("{} and {} are friends already", r.from_user_id, r.to_user_id),
            )
            .into());
        }
        let request = FriendRequest {
            from_user_id: r.from_user_id.clone(),
            to_user_id: r.to_user_id.clone(),
            handle_result: handle_result::PENDING,
            req_msg: r.req_msg.clone(),
            create_time: now_millis(),
            ex: r.ex.clone(),
            ..Default::default()
        };
        self.stores.friend_requests.put_friend_request(&request).await.map_err(store_status)?;
        let pb = self.request_pb(request).await?;
        self.notes.application_added(pb).await;
        let body = json!({"fromUserID": r.from_user_id, "toUserID": r.to_user_id, "reqMsg": r.req_msg});
        self.hooks.tell("afterAddFriend", &cfg.after_add_friend, "callbackAfterAddFriendCommand", body, &operation_id);
        Ok(())
    }

    pub(crate) async fn respond(&self, req: Request<relation::RespondFriendApplyReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        if op != r.to_user_id && !self.share.is_admin(&op) {
            return Err(ImError::no_permission(format!("only {} may answer this application", r.to_user_id)).into());
        }
        limits::text("handleMsg", &r.handle_msg, limits::REQ_MSG)?;
        if r.handle_result != handle_result::ACCEPTED && r.handle_result != handle_result::REFUSED {
            return Err(
                ImError::args(format!("handleResult {} is not 1 (accept) or -1 (refuse)", r.handle_result)).into()
            );
        }
        let Some(pending) =
            self.stores.friend_requests.friend_request(&r.from_user_id, &r.to_user_id).await.map_err(store_status)?
        else {
            return Err(ImError::new(
                ErrCode::RECORD_NOT_FOUND,
                format!("no friend application from {} to {}", r.from_user_id, r.to_user_id),
            )
            .into());
        };
        let handled_already = || {
            Status::from(ImError::new(ErrCode::FRIEND_REQUEST_HANDLED, "the friend application was answered already"))
        };
        if pending.handle_result != handle_result::PENDING {
            return Err(handled_already());
        }
        // OpenIM's body: the accepting user under `blackUserID`, capitalised `HandleResult`.
        let cfg = self.hooks.config();
        let agree = json!({"fromUserID": r.from_user_id, "blackUserID": r.to_user_id,
            "HandleResult": r.handle_result, "HandleMsg": r.handle_msg});
        if r.handle_result == handle_result::ACCEPTED {
            let command = "callbackBeforeAddFriendAgreeCommand";
            self.hooks
                .check("beforeAddFriendAgree", &cfg.before_add_friend_agree, command, agree.clone(), &operation_id)
                .await?;
        }
        let now = now_millis();
        let handled = FriendRequest {
            handle_result: r.handle_result,
            handler_user_id: op.clone(),
            handle_msg: r.handle_msg.clone(),
            handle_time: now,
            ..pending
        };
        let friends = if r.handle_result == handle_result::ACCEPTED {
            let entry = |owner: &str, friend: &str| Friend {
                owner_user_id: owner.to_owned(),
                friend_user_id: friend.to_owned(),
                create_time: now,
                add_source: add_source::APPLY,
                operator_user_id: r.from_user_id.clone(),
                ..Default::default()
            };
            vec![entry(&r.to_user_id, &r.from_user_id), entry(&r.from_user_id, &r.to_user_id)]
        } else {
            Vec::new()
        };
        match self.stores.friend_requests.handle_friend_request(&handled, &friends).await {
            Ok(()) => {}
            // Answered by another device between the read and the write.
            Err(StoreError::NotFound(_)) => return Err(handled_already()),
            Err(e) => return Err(store_status(e)),
        }
        let pb = self.request_pb(handled).await?;
        if r.handle_result == handle_result::ACCEPTED {
            let command = "callbackAfterAddFriendAgreeCommand";
            self.hooks.tell("afterAddFriendAgree", &cfg.after_add_friend_agree, command, agree, &operation_id);
            self.notes.application_approved(&r.from_user_id, &r.to_user_id, Some(pb), &r.handle_msg).await;
        } else {
            self.notes.application_rejected(pb, &r.handle_msg).await;
        }
        Ok(())
    }

    /// Applications `user` received (`received`) or sent, a page of them, newest first.
    pub(crate) async fn applications(
        &self,
        user: &str,
        received: bool,
        handle_results: &[i32],
        pagination: Option<&sdkws::RequestPagination>,
    ) -> Result<(Vec<sdkws::FriendRequest>, i32), Status> {
        limits::ids("handleResults", handle_results.len())?;
        let (offset, limit) = rpc::page(pagination);
        let (rows, total) = self
            .stores
            .friend_requests
            .friend_requests(user, received, handle_results, offset, limit)
            .await
            .map_err(store_status)?;
        Ok((self.requests_pb(rows).await?, total as i32))
    }

    /// The applications between two users, both ways.
    pub(crate) async fn designated_applications(
        &self,
        req: Request<relation::GetDesignatedFriendsApplyReq>,
    ) -> Result<Vec<sdkws::FriendRequest>, Status> {
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        if op != r.from_user_id && op != r.to_user_id && !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only the two users may read their applications").into());
        }
        let mut rows = Vec::new();
        for (from, to) in [(&r.from_user_id, &r.to_user_id), (&r.to_user_id, &r.from_user_id)] {
            if let Some(found) = self.stores.friend_requests.friend_request(from, to).await.map_err(store_status)? {
                rows.push(found);
            }
        }
        self.requests_pb(rows).await
    }

    pub(crate) async fn unhandled_count(
        &self,
        req: Request<relation::GetSelfUnhandledApplyCountReq>,
    ) -> Result<i64, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let n =
            self.stores.friend_requests.unhandled_friend_requests(&r.user_id, r.time).await.map_err(store_status)?;
        Ok(n as i64)
    }

    async fn request_pb(&self, r: FriendRequest) -> Result<sdkws::FriendRequest, Status> {
        Ok(self.requests_pb(vec![r]).await?.remove(0))
    }

    /// Applications with both users' names and faces, as OpenIM answers them.
    async fn requests_pb(&self, rows: Vec<FriendRequest>) -> Result<Vec<sdkws::FriendRequest>, Status> {
        let mut ids: Vec<String> = rows.iter().flat_map(|r| [r.from_user_id.clone(), r.to_user_id.clone()]).collect();
        ids.sort();
        ids.dedup();
        let users = self.stores.users.get_users(&ids).await.map_err(store_status)?;
        let users: std::collections::HashMap<&str, &openim_storage::User> =
            users.iter().map(|u| (u.user_id.as_str(), u)).collect();
        let profile = |id: &str| users.get(id).map(|u| (u.nickname.clone(), u.face_url.clone())).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| {
                let (from_nickname, from_face_url) = profile(&r.from_user_id);
                let (to_nickname, to_face_url) = profile(&r.to_user_id);
                sdkws::FriendRequest {
                    from_user_id: r.from_user_id,
                    from_nickname,
                    from_face_url,
                    to_user_id: r.to_user_id,
                    to_nickname,
                    to_face_url,
                    handle_result: r.handle_result,
                    req_msg: r.req_msg,
                    create_time: r.create_time,
                    handler_user_id: r.handler_user_id,
                    handle_msg: r.handle_msg,
                    handle_time: r.handle_time,
                    ex: r.ex,
                }
            })
            .collect())
    }
}
