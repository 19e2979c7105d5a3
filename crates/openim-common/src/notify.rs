//! The one notification sender of every service (OpenIM's `NotificationSender`): builds the
//! message around a tips payload, picks its conversation and puts it on the bus, so it takes the
//! same path as a chat message (transfer: seq and store; push: every online device of every
//! receiver, the sender's other devices included). A new notification is a call of
//! [`Notifier::send`], never a new path through the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use openim_proto::constants::{msg_from, session};
use openim_proto::pb::sdkws::{MsgData, NotificationElem, OfflinePushInfo};
use openim_storage::{Bus, BusMessage, topic};
use prost::Message as _;

use crate::ids;
use crate::token::now_millis;

/// What a notification is and where it goes.
#[derive(Debug, Clone)]
pub struct Note {
    pub content_type: i32,
    /// Single chat (`n_<a>_<b>` between `send_id` and `recv_id`) or group (`n_<groupID>`).
    pub session_type: i32,
    pub send_id: String,
    pub recv_id: String,
    pub group_id: String,
    /// Pushed to whoever is online and never stored (no seq): for state that only matters now
    /// (a clear, a status change).
    pub online_only: bool,
    /// Also shown in the group's chat (OpenIM's `isSendMsg`): a copy of a group notification
    /// goes to `sg_<groupID>` as a tip message, with its own seq, so apps show "A joined" in the
    /// chat and a member who was away finds it in the history.
    pub show: bool,
}

impl Note {
    /// A notification between two users, in their `n_<a>_<b>` conversation; stored with a seq so
    /// that devices that were offline catch up when they sync.
    pub fn single(content_type: i32, send_id: &str, recv_id: &str) -> Self {
        Self {
            content_type,
            session_type: session::SINGLE_CHAT,
            send_id: send_id.to_owned(),
            recv_id: recv_id.to_owned(),
            group_id: String::new(),
            online_only: false,
            show: false,
        }
    }

    /// A notification to a group's members, in `n_<groupID>`.
    pub fn group(content_type: i32, send_id: &str, group_id: &str) -> Self {
        Self {
            session_type: session::READ_GROUP_CHAT,
            group_id: group_id.to_owned(),
            recv_id: String::new(),
            ..Self::single(content_type, send_id, "")
        }
    }

    /// Pushed to online devices only, never stored.
    pub fn online_only(mut self) -> Self {
        self.online_only = true;
        self
    }
}

/// The options a notification carries: stored with a seq in the notification conversation
/// (unless online-only), synced to the sender's other devices, never offline-pushed and never
/// counted as unread (OpenIM's `notification.yml` defaults).
pub fn options(online_only: bool, show: bool) -> HashMap<String, bool> {
    option_map(&[
        ("history", !online_only),
        ("persistent", !online_only),
        ("senderSync", true),
        ("isSendMsg", show),
        ("offlinePush", false),
        ("unreadCount", false),
        ("conversationUpdate", false),
        ("senderConversationUpdate", false),
        ("notPrivate", false),
        ("reactionFromCache", false),
        ("isNotNotification", false),
    ])
}

/// The options of a notification's copy in the chat (OpenIM's msgtransfer clones it with only
/// `offlinePush` and `unreadCount` set, so every other switch reads as on): a stored message that
/// updates the conversation, not pushed offline and not counted as unread.
pub fn chat_copy_options() -> HashMap<String, bool> {
    option_map(&[
        ("history", true),
        ("persistent", true),
        ("senderSync", true),
        ("isSendMsg", false),
        ("offlinePush", false),
        ("unreadCount", false),
        ("conversationUpdate", true),
        ("senderConversationUpdate", true),
        ("notPrivate", true),
        ("reactionFromCache", true),
        ("isNotNotification", true),
    ])
}

fn option_map(pairs: &[(&str, bool)]) -> HashMap<String, bool> {
    pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
}

/// A notification's `content`: `{"detail": "<JSON of the tips>"}`, as OpenIM writes it.
pub fn content<T: serde::Serialize>(tips: &T) -> Vec<u8> {
    let detail = serde_json::to_string(tips).unwrap_or_default();
    serde_json::to_vec(&NotificationElem { detail }).unwrap_or_default()
}

/// The message a notification travels in.
pub fn message<T: serde::Serialize>(note: &Note, tips: &T) -> MsgData {
    let now = now_millis();
    MsgData {
        send_id: note.send_id.clone(),
        recv_id: note.recv_id.clone(),
        group_id: note.group_id.clone(),
        client_msg_id: ids::new_id(),
        server_msg_id: ids::new_id(),
        session_type: note.session_type,
        msg_from: msg_from::SYSTEM,
        content_type: note.content_type,
        content: content(tips),
        send_time: now,
        create_time: now,
        options: options(note.online_only, note.show),
        offline_push_info: Some(OfflinePushInfo::default()),
        ..Default::default()
    }
}

/// Sends notifications through the bus.
#[derive(Clone)]
pub struct Notifier {
    bus: Arc<dyn Bus>,
}

impl Notifier {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    /// Sends one notification. What it reports has already happened (and is stored), so a
    /// failure is logged, not returned: clients see the change at their next sync.
    pub async fn send<T: serde::Serialize>(&self, note: Note, tips: &T) {
        self.send_all(vec![(note, content(tips))]).await;
    }

    /// Sends several notifications in one bus call; each is `(note, content)`. A shown group
    /// notification goes as itself, then as its copy in the chat: an app that meets a group
    /// first in a chat message fetches the group's card and stores it, and then its sync on
    /// the notification finds the group already there and reports no `OnJoinedGroupAdded`.
    pub async fn send_all(&self, notes: Vec<(Note, Vec<u8>)>) {
        let mut records = Vec::with_capacity(notes.len());
        for (note, body) in notes {
            let mut m = message(&note, &());
            m.content = body;
            let Some(conversation_id) = ids::conversation_id_of(&m) else {
                tracing::error!(content_type = note.content_type, "A notification has no conversation; dropped.");
                continue;
            };
            let copy = (note.show && note.session_type == session::READ_GROUP_CHAT)
                .then(|| MsgData { options: chat_copy_options(), ..m.clone() });
            records.push(BusMessage { key: conversation_id, payload: m.encode_to_vec().into() });
            if let Some(copy) = copy
                && let Some(conversation_id) = ids::conversation_id_of(&copy)
            {
                records.push(BusMessage { key: conversation_id, payload: copy.encode_to_vec().into() });
            }
        }
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(topic::TO_TRANSFER, records).await {
            tracing::error!(error = %e, "Could not send notifications; clients see the change when they sync.");
        }
    }
}

#[cfg(test)]
mod tests;
