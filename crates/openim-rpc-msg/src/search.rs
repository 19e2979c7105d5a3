//! `/msg/search_msg` (administrators): chat messages by sender, receiver, content type, session
//! type and day. Messages are stored as OpenIM's `MsgData`, so the search walks them in send
//! order through the store's scan and filters here, one page of the scan at a time, up to a
//! bound on how many it looks at; the count is then a lower bound, as OpenIM's is.

use std::collections::{HashMap, HashSet};

use openim_common::error::store_status;
use openim_common::{ImError, rpc};
use openim_proto::constants::session;
use openim_proto::pb::msg;
use openim_proto::pb::sdkws::MsgData;
use openim_storage::ScanPosition;
use tonic::{Request, Status};

use crate::MsgService;

/// Messages read from the store per scan call.
const SCAN_BATCH: u32 = 500;
/// Most messages one search looks at.
const MAX_SCANNED: usize = 200_000;
const DAY_MS: i64 = 86_400_000;

struct Filter {
    send_id: String,
    recv_id: String,
    content_type: i32,
    session_type: i32,
}

impl Filter {
    fn matches(&self, m: &MsgData) -> bool {
        (self.send_id.is_empty() || m.send_id == self.send_id)
            && (self.recv_id.is_empty() || m.recv_id == self.recv_id || m.group_id == self.recv_id)
            && (self.content_type == 0 || m.content_type == self.content_type)
            && (self.session_type == 0 || m.session_type == self.session_type)
    }
}

/// `[start, end)` in unix milliseconds of a "YYYY-MM-DD" day in UTC.
fn day_range(day: &str) -> Result<(i64, i64), ImError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, format)
        .map_err(|e| ImError::args(format!("sendTime {day:?} is not a day as YYYY-MM-DD: {e}")))?;
    let start = date.midnight().assume_utc().unix_timestamp() * 1000;
    Ok((start, start + DAY_MS))
}

impl MsgService {
    pub(crate) async fn search(&self, req: Request<msg::SearchMessageReq>) -> Result<msg::SearchMessageResp, Status> {
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only administrators may search messages").into());
        }
        let r = req.into_inner();
        let (from, to) = if r.send_time.is_empty() { (i64::MIN, i64::MAX) } else { day_range(&r.send_time)? };
        let (skip, limit) = rpc::page(r.pagination.as_ref());
        let filter = Filter {
            send_id: r.send_id,
            recv_id: r.recv_id,
            content_type: r.content_type,
            session_type: r.session_type,
        };

        let mut found = Vec::new();
        let mut matched = 0usize;
        let mut scanned = 0usize;
        let mut after: Option<ScanPosition> = None;
        while scanned < MAX_SCANNED {
            let batch = self
                .stores
                .messages
                .scan_chat_messages(from, to, after.as_ref(), SCAN_BATCH)
                .await
                .map_err(store_status)?;
            scanned += batch.len();
            let last = batch.len() < SCAN_BATCH as usize;
            after = batch.last().map(|(p, _)| p.clone());
            for (position, m) in batch {
                if !filter.matches(&m) {
                    continue;
                }
                if matched >= skip as usize && found.len() < limit as usize {
                    found.push((position.conversation_id, m));
                }
                matched += 1;
            }
            if last {
                break;
            }
        }
        let chat_logs = self.chat_logs(found).await?;
        Ok(msg::SearchMessageResp { chat_logs, chat_logs_num: i32::try_from(matched).unwrap_or(i32::MAX) })
    }

    /// The page's messages as OpenIM's chat logs: with names, group details and whether each
    /// was revoked.
    async fn chat_logs(&self, found: Vec<(String, MsgData)>) -> Result<Vec<msg::SearchChatLog>, Status> {
        let mut user_ids: HashSet<String> = HashSet::new();
        let mut group_ids: HashSet<String> = HashSet::new();
        for (_, m) in &found {
            user_ids.insert(m.send_id.clone());
            match m.session_type {
                session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT => {
                    group_ids.insert(m.group_id.clone());
                }
                _ => {
                    user_ids.insert(m.recv_id.clone());
                }
            }
        }
        let user_ids: Vec<String> = user_ids.into_iter().collect();
        let nicknames: HashMap<String, String> = self
            .stores
            .users
            .get_users(&user_ids)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|u| (u.user_id, u.nickname))
            .collect();
        let group_ids: Vec<String> = group_ids.into_iter().collect();
        let mut groups = HashMap::new();
        for g in self.stores.groups.get_groups(&group_ids).await.map_err(store_status)? {
            let members = self.stores.groups.member_ids(&g.group_id).await.map_err(store_status)?.len();
            groups.insert(g.group_id.clone(), (g, members));
        }
        // Revoke marks: one read per conversation, over the page's seqs in it.
        let mut spans: HashMap<&str, (i64, i64)> = HashMap::new();
        for (conversation_id, m) in &found {
            let span = spans.entry(conversation_id.as_str()).or_insert((m.seq, m.seq));
            *span = (span.0.min(m.seq), span.1.max(m.seq));
        }
        let mut revoked: HashSet<(String, i64)> = HashSet::new();
        for (conversation_id, (begin, end)) in spans {
            let marks = self.stores.messages.marks(conversation_id, begin, end).await.map_err(store_status)?;
            revoked.extend(
                marks.into_iter().filter(|(_, k)| k.revoke.is_some()).map(|(seq, _)| (conversation_id.to_owned(), seq)),
            );
        }
        let mut out = Vec::with_capacity(found.len());
        for (conversation_id, m) in found {
            let is_revoked = revoked.contains(&(conversation_id, m.seq));
            let name = |id: &str| nicknames.get(id).cloned().unwrap_or_default();
            let mut log = msg::ChatLog {
                sender_nickname: if m.sender_nickname.is_empty() {
                    name(&m.send_id)
                } else {
                    m.sender_nickname.clone()
                },
                content: String::from_utf8_lossy(&m.content).into_owned(),
                server_msg_id: m.server_msg_id,
                client_msg_id: m.client_msg_id,
                send_id: m.send_id,
                recv_id: m.recv_id,
                group_id: m.group_id,
                sender_platform_id: m.sender_platform_id,
                sender_face_url: m.sender_face_url,
                session_type: m.session_type,
                msg_from: m.msg_from,
                content_type: m.content_type,
                status: m.status,
                send_time: m.send_time,
                create_time: m.create_time,
                ex: m.ex,
                seq: m.seq,
                ..Default::default()
            };
            if let Some((g, members)) = groups.get(&log.group_id) {
                // OpenIM also reports the group as the receiver of a group message.
                log.recv_id = g.group_id.clone();
                log.group_name = g.group_name.clone();
                log.group_face_url = g.face_url.clone();
                log.group_owner = g.owner_user_id.clone();
                log.group_type = g.group_type;
                log.group_member_count = u32::try_from(*members).unwrap_or(u32::MAX);
            } else if log.group_id.is_empty() {
                log.recv_nickname = name(&log.recv_id);
            }
            out.push(msg::SearchChatLog { chat_log: Some(log), is_revoked });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_read_in_utc() {
        assert_eq!(day_range("1970-01-02").unwrap(), (DAY_MS, 2 * DAY_MS));
        assert_eq!(day_range("2026-12-03").unwrap().0, 1_796_256_000_000);
        for bad in ["2026-13-01", "2026-12-3x", "yesterday", ""] {
            assert_eq!(day_range(bad).unwrap_err().code.0, 1001, "{bad}");
        }
    }
}
