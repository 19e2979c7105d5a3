//! What one pull answers: at most [`MAX_PULL`] messages per conversation and
//! [`MAX_PULL_BYTES`] of messages in all.

use openim_proto::pb::sdkws::{MsgData, PullMsgs};
use prost::Message as _;

/// Most messages one pull may return per conversation.
pub(crate) const MAX_PULL: i64 = 500;

/// Most message bytes in one pull answer: it travels as one WebSocket frame, and the official
/// SDK's native clients refuse frames above 1 MiB (JSON's base64 adds a third). A pull that would
/// answer more gets the newest messages that fit with `isEnd: false`; the SDK asks again for the
/// seqs it still lacks.
pub(crate) const MAX_PULL_BYTES: usize = 512 * 1024;

/// Drops the oldest of `msgs` (in seq order) that do not fit in `budget` bytes and takes what is
/// kept from it; the newest message is kept even alone above a whole budget, so every pull makes
/// progress. Whether any was dropped.
pub(crate) fn keep_newest_within(msgs: &mut Vec<MsgData>, budget: &mut usize) -> bool {
    let mut used = 0;
    let mut keep = 0;
    for m in msgs.iter().rev() {
        let len = m.encoded_len();
        if used + len > *budget && !(keep == 0 && *budget == MAX_PULL_BYTES) {
            break;
        }
        used += len;
        keep += 1;
    }
    *budget = budget.saturating_sub(used);
    let cut = keep < msgs.len();
    msgs.drain(..msgs.len() - keep);
    cut
}

pub(crate) fn pull_msgs(msgs: Vec<MsgData>, end_seq: i64, max_seq: i64) -> PullMsgs {
    let is_end = end_seq >= max_seq;
    PullMsgs { msgs, is_end, end_seq }
}
