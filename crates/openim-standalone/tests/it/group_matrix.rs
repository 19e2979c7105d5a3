//! The group permission matrix: every group route, called by each role (the group's owner, an
//! admin, an ordinary member, a user outside the group, the app's administrator), gets OpenIM's
//! answer. Each cell runs on a group of its own, so one cell's change cannot decide another's.

use serde_json::{Value, json};

use crate::stack::Stack;

/// The callers, in the order of each row's expected codes.
const ROLES: [&str; 5] = ["own", "adm", "mem", "out", "imAdmin"];

/// (route, body with `{g}` for the cell's group and `{me}` for the caller, codes by [`ROLES`]).
fn rows() -> Vec<(&'static str, Value, [i32; 5])> {
    let page = json!({"pageNumber": 1, "showNumber": 10});
    let member_read = [0, 0, 0, 1002, 0];
    let managers_mute = [0, 0, 1002, 1004, 0];
    let owner_only = [0, 1002, 1002, 1002, 0];
    vec![
        // The app's administrator is no registered user: it owns and applies for nobody.
        (
            "/group/create_group",
            json!({"ownerUserID": "{me}", "groupInfo": {"groupName": "n", "groupType": 2}}),
            [0, 0, 0, 0, 1101],
        ),
        ("/group/get_groups_info", json!({"groupIDs": ["{g}"]}), [0; 5]),
        ("/group/get_joined_group_list", json!({"fromUserID": "{me}", "pagination": page}), [0; 5]),
        ("/group/get_full_join_group_ids", json!({"userID": "{me}", "idHash": 0}), [0; 5]),
        ("/group/get_incremental_join_groups", json!({"userID": "{me}", "versionID": "", "version": 0}), [0; 5]),
        (
            "/group/get_incremental_group_members_batch",
            json!({"userID": "{me}", "reqList": [{"groupID": "{g}", "versionID": "", "version": 0}]}),
            [0; 5],
        ),
        ("/group/get_group_member_list", json!({"groupID": "{g}", "pagination": page}), member_read),
        ("/group/get_group_members_info", json!({"groupID": "{g}", "userIDs": ["t1"]}), member_read),
        ("/group/get_group_member_user_id", json!({"groupID": "{g}"}), member_read),
        ("/group/get_incremental_group_members", json!({"groupID": "{g}", "versionID": "", "version": 0}), member_read),
        ("/group/get_full_group_member_user_ids", json!({"groupID": "{g}", "idHash": 0}), member_read),
        ("/group/get_group_abstract_info", json!({"groupIDs": ["{g}"]}), member_read),
        // Any member invites (the group lets invitees in at once); outsiders are not in it yet.
        ("/group/invite_user_to_group", json!({"groupID": "{g}", "invitedUserIDs": ["new"]}), [0, 0, 0, 1203, 0]),
        ("/group/kick_group", json!({"groupID": "{g}", "kickedUserIDs": ["t1"]}), [0, 0, 1002, 1002, 0]),
        ("/group/kick_group", json!({"groupID": "{g}", "kickedUserIDs": ["ad2"]}), owner_only),
        ("/group/mute_group_member", json!({"groupID": "{g}", "userID": "t1", "mutedSeconds": 60}), managers_mute),
        (
            "/group/mute_group_member",
            json!({"groupID": "{g}", "userID": "ad2", "mutedSeconds": 60}),
            [0, 1002, 1002, 1004, 0],
        ),
        ("/group/cancel_mute_group_member", json!({"groupID": "{g}", "userID": "t1"}), managers_mute),
        ("/group/mute_group", json!({"groupID": "{g}"}), managers_mute),
        ("/group/cancel_mute_group", json!({"groupID": "{g}"}), managers_mute),
        ("/group/set_group_info_ex", json!({"groupID": "{g}", "groupName": "x"}), managers_mute),
        ("/group/set_group_info", json!({"groupInfoForSet": {"groupID": "{g}", "introduction": "x"}}), managers_mute),
        (
            "/group/set_group_member_info",
            json!({"members": [{"groupID": "{g}", "userID": "t1", "nickname": "n"}]}),
            [0, 0, 1002, 1002, 0],
        ),
        (
            "/group/set_group_member_info",
            json!({"members": [{"groupID": "{g}", "userID": "ad2", "roleLevel": 20}]}),
            owner_only,
        ),
        (
            "/group/set_group_member_info",
            json!({"members": [{"groupID": "{g}", "userID": "{me}", "nickname": "me"}]}),
            [0, 0, 0, 1001, 1001],
        ),
        (
            "/group/transfer_group",
            json!({"groupID": "{g}", "oldOwnerUserID": "own", "newOwnerUserID": "t1"}),
            owner_only,
        ),
        ("/group/dismiss_group", json!({"groupID": "{g}"}), owner_only),
        ("/group/quit_group", json!({"groupID": "{g}"}), [1002, 0, 0, 1004, 1004]),
        (
            "/group/join_group",
            json!({"groupID": "{g}", "joinSource": 3, "reqMessage": "hi"}),
            [1001, 1001, 1001, 0, 1004],
        ),
        (
            "/group/group_application_response",
            json!({"groupID": "{g}", "fromUserID": "ap", "handleResult": 1}),
            [0, 0, 1002, 1004, 0],
        ),
        (
            "/group/get_recv_group_applicationList",
            json!({"fromUserID": "{me}", "groupIDs": ["{g}"], "pagination": page}),
            [0, 0, 1002, 1004, 0],
        ),
        (
            "/group/get_group_users_req_application_list",
            json!({"groupID": "{g}", "userIDs": ["ap"]}),
            [0, 0, 1002, 1004, 0],
        ),
        (
            "/group/get_specified_user_group_request_info",
            json!({"groupID": "{g}", "userID": "ap"}),
            [0, 0, 1002, 1004, 0],
        ),
        ("/group/get_group_application_unhandled_count", json!({"userID": "{me}", "time": 0}), [0; 5]),
        ("/group/get_user_req_group_applicationList", json!({"userID": "{me}", "pagination": page}), [0; 5]),
        ("/group/get_groups", json!({"groupName": "", "pagination": page}), [1002, 1002, 1002, 1002, 0]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_route_answers_each_role_as_openim_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "ad2", "mem", "t1", "out", "ap", "new"]).await;
    let mut tokens = Vec::new();
    for role in &ROLES[..4] {
        tokens.push(s.token(role, 5).await);
    }
    tokens.push(s.rest.token.clone());

    let mut wrong = Vec::new();
    let mut cells = 0;
    for (i, (route, body, expected)) in rows().into_iter().enumerate() {
        for (r, role) in ROLES.iter().enumerate() {
            let g = format!("pm{i}-{r}");
            let group = json!({"ownerUserID": "own", "memberUserIDs": ["mem", "t1"], "adminUserIDs": ["adm", "ad2"],
                "groupInfo": {"groupID": g, "groupName": g, "groupType": 2}});
            s.rest.ok("/group/create_group", group).await;
            let ap = s.token("ap", 5).await;
            s.rest.ok_as(&ap, "/group/join_group", json!({"groupID": g, "joinSource": 3, "reqMessage": "me"})).await;
            let body = body.to_string().replace("{g}", &g).replace("{me}", role);
            let env = s.rest.raw(route, &tokens[r], body.clone()).await;
            cells += 1;
            if env["errCode"] != expected[r] {
                wrong.push(format!("{route} as {role}: got {} want {} ({body}) {env}", env["errCode"], expected[r]));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {cells} cells differ:\n{}", wrong.len(), wrong.join("\n"));
    // Every group route of the route table is in the matrix.
    let covered: std::collections::BTreeSet<&str> = rows().iter().map(|(r, _, _)| *r).collect();
    let missing: Vec<&str> =
        openim_api::paths().into_iter().filter(|r| r.starts_with("/group/") && !covered.contains(r)).collect();
    assert!(missing.is_empty(), "group routes without a row: {missing:?}");
    s.stop().await;
}
