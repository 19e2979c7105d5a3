//! The send times of the messages msgtransfer stored last: how a client's resend, which
//! rpc-msg gives a new send time, is found in a store that looks messages up by send time.

use std::collections::HashMap;

use openim_storage::StoredMsg;

use crate::stable_hash;

/// Messages remembered by [`RecentSendTimes`]: at 10,000 msg/s, the last 10 s; at 100 msg/s,
/// the last 16 minutes. ~3 MB.
const RECENT_MESSAGES: usize = 100_000;

/// The send time each recently stored (conversation, clientMsgID) was stored with, by a hash of
/// the pair, oldest first out.
///
/// The store finds a message by clientMsgID *and* send time (the embedded store has no index on
/// the clientMsgID alone: ARCHITECTURE.md). A replayed record carries its send time; a client's
/// resend does not (rpc-msg gives it a new one), so a resend of a message stored lately is
/// looked up under the send time it was stored with. A hash collision costs nothing: the store
/// still matches the clientMsgID itself.
#[derive(Default)]
pub(crate) struct RecentSendTimes {
    times: HashMap<u64, i64>,
    order: std::collections::VecDeque<u64>,
}

impl RecentSendTimes {
    fn key(conversation_id: &str, client_msg_id: &str) -> u64 {
        stable_hash((conversation_id, client_msg_id))
    }

    pub(crate) fn get(&self, conversation_id: &str, client_msg_id: &str) -> Option<i64> {
        self.times.get(&Self::key(conversation_id, client_msg_id)).copied()
    }

    pub(crate) fn remember(&mut self, stored: &[StoredMsg]) {
        for m in stored {
            let key = Self::key(&m.conversation_id, &m.msg.client_msg_id);
            if self.times.insert(key, m.msg.send_time).is_none() {
                self.order.push_back(key);
            }
        }
        while self.order.len() > RECENT_MESSAGES {
            if let Some(old) = self.order.pop_front() {
                self.times.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openim_proto::pb::sdkws::MsgData;

    use super::*;

    fn stored(conv: &str, id: &str, send_time: i64) -> StoredMsg {
        StoredMsg {
            conversation_id: conv.into(),
            msg: MsgData { client_msg_id: id.into(), send_time, ..Default::default() },
        }
    }

    #[test]
    fn recent_send_times_keep_the_latest_time_and_forget_the_oldest() {
        let mut recent = RecentSendTimes::default();
        recent.remember(&[stored("si_a_b", "m1", 10), stored("si_a_c", "m1", 11)]);
        assert_eq!(recent.get("si_a_b", "m1"), Some(10));
        assert_eq!(recent.get("si_a_c", "m1"), Some(11), "by conversation and clientMsgID");
        assert_eq!(recent.get("si_a_b", "m2"), None);
        recent.remember(&[stored("si_a_b", "m1", 12)]);
        assert_eq!(recent.get("si_a_b", "m1"), Some(12), "a pair stored again keeps its latest time");
        assert_eq!(recent.order.len(), 2, "and its one place in the order");
        let later: Vec<StoredMsg> = (0..RECENT_MESSAGES).map(|i| stored("si_x_y", &format!("n{i}"), 20)).collect();
        recent.remember(&later);
        assert_eq!(recent.get("si_a_b", "m1"), None, "the oldest go first");
        assert_eq!(recent.get("si_x_y", "n0"), Some(20));
        assert_eq!(recent.times.len(), RECENT_MESSAGES);
        assert_eq!(recent.order.len(), RECENT_MESSAGES);
    }
}
