//! Read state, as OpenIM v3.8 keeps it: a has-read seq per user and conversation, raised by
//! marking a conversation (or some of its messages) read. Every mark sends OpenIM's 2200 read
//! receipt (`MarkAsReadTips`), pushed live and not stored, as OpenIM does: in a single chat from
//! the reader to the peer (the sender's devices show "read"), otherwise to the reader's own other
//! devices, which also get the single-chat one. A device that was offline reads the seqs at login
//! (1006).

use openim_common::error::store_status;
use openim_common::ids::{self, ConversationTarget};
use openim_common::notify::Note;
use openim_common::{ImError, rpc};
use openim_proto::constants::content;
use openim_proto::pb::msg;
use openim_proto::pb::sdkws::MarkAsReadTips;
use tonic::{Request, Status};

use crate::MsgService;

/// Most seqs one mark may list.
const MAX_SEQS: usize = 1000;

impl MsgService {
    pub(crate) async fn mark_conversation_read(
        &self,
        req: Request<msg::MarkConversationAsReadReq>,
    ) -> Result<(), Status> {
        let r = req.get_ref();
        self.check_reader(&req, &r.user_id, &r.conversation_id, r.seqs.len()).await?;
        let r = req.into_inner();
        let max = self.max_seq(&r.conversation_id).await?;
        if r.has_read_seq < 0 || r.has_read_seq > max {
            return Err(ImError::args(format!("hasReadSeq {} is outside 0..={max}", r.has_read_seq)).into());
        }
        let before = self.read_seq(&r.user_id, &r.conversation_id).await?;
        // The seqs newly read, and any the client lists (it may have missed marking them).
        let mut seqs: Vec<i64> = (before + 1..=r.has_read_seq).take(MAX_SEQS).collect();
        seqs.extend(r.seqs.iter().filter(|s| **s > 0 && **s <= max));
        seqs.sort_unstable();
        seqs.dedup();
        let has_read = r.has_read_seq.max(before);
        self.stores.seqs.set_read_seq(&r.user_id, &r.conversation_id, has_read).await.map_err(store_status)?;
        self.receipt(&r.user_id, &r.conversation_id, seqs, has_read).await;
        Ok(())
    }

    pub(crate) async fn mark_msgs_read(&self, req: Request<msg::MarkMsgsAsReadReq>) -> Result<(), Status> {
        let r = req.get_ref();
        self.check_reader(&req, &r.user_id, &r.conversation_id, r.seqs.len()).await?;
        let r = req.into_inner();
        let Some(&last) = r.seqs.last() else { return Err(ImError::args("seqs is empty").into()) };
        let max = self.max_seq(&r.conversation_id).await?;
        if r.seqs.iter().any(|s| *s <= 0 || *s > max) {
            return Err(ImError::args(format!("seqs must be within 1..={max}")).into());
        }
        let before = self.read_seq(&r.user_id, &r.conversation_id).await?;
        let has_read = last.max(before);
        self.stores.seqs.set_read_seq(&r.user_id, &r.conversation_id, has_read).await.map_err(store_status)?;
        self.receipt(&r.user_id, &r.conversation_id, r.seqs, has_read).await;
        Ok(())
    }

    pub(crate) async fn set_has_read_seq(&self, req: Request<msg::SetConversationHasReadSeqReq>) -> Result<(), Status> {
        let r = req.get_ref();
        self.check_reader(&req, &r.user_id, &r.conversation_id, 0).await?;
        let r = req.into_inner();
        let max = self.max_seq(&r.conversation_id).await?;
        if r.has_read_seq < 0 || r.has_read_seq > max {
            return Err(ImError::args(format!("hasReadSeq {} is outside 0..={max}", r.has_read_seq)).into());
        }
        self.stores.seqs.set_read_seq(&r.user_id, &r.conversation_id, r.has_read_seq).await.map_err(store_status)?;
        if !r.no_notification {
            let has_read = self.read_seq(&r.user_id, &r.conversation_id).await?;
            self.notify_read(&r.user_id, &r.user_id, &r.conversation_id, Vec::new(), has_read).await;
        }
        Ok(())
    }

    /// The caller reads for itself (or is an administrator), in a conversation it is part of,
    /// listing a bounded number of seqs.
    async fn check_reader<T>(
        &self,
        req: &Request<T>,
        user: &str,
        conversation_id: &str,
        seqs: usize,
    ) -> Result<(), Status> {
        self.check_self(req, user)?;
        if seqs > MAX_SEQS {
            return Err(ImError::args(format!("seqs has {seqs} entries; at most {MAX_SEQS} are allowed")).into());
        }
        if ids::is_notification(conversation_id) || !self.can_read(user, conversation_id).await? {
            let op = rpc::op_user_id(req);
            return Err(ImError::no_permission(format!("{op}: {user} is not in conversation {conversation_id}")).into());
        }
        Ok(())
    }

    async fn max_seq(&self, conversation_id: &str) -> Result<i64, Status> {
        let max = self.stores.seqs.max_seqs(&[conversation_id.to_owned()]).await.map_err(store_status)?;
        Ok(max.get(conversation_id).copied().unwrap_or(0))
    }

    async fn read_seq(&self, user: &str, conversation_id: &str) -> Result<i64, Status> {
        let read = self.stores.seqs.read_seqs(user, &[conversation_id.to_owned()]).await.map_err(store_status)?;
        Ok(read.get(conversation_id).copied().unwrap_or(0))
    }

    /// The receipt of a mark: to the peer of a single chat, else to the reader's own devices.
    async fn receipt(&self, reader: &str, conversation_id: &str, seqs: Vec<i64>, has_read: i64) {
        let to = match ids::parse_conversation_id(conversation_id, reader) {
            Some(ConversationTarget::Single(a, b)) => if a == reader { b } else { a }.to_owned(),
            _ => reader.to_owned(),
        };
        self.notify_read(reader, &to, conversation_id, seqs, has_read).await;
    }

    async fn notify_read(&self, reader: &str, to: &str, conversation_id: &str, seqs: Vec<i64>, has_read: i64) {
        let tips = MarkAsReadTips {
            mark_as_read_user_id: reader.to_owned(),
            conversation_id: conversation_id.to_owned(),
            seqs,
            has_read_seq: has_read,
        };
        self.notifier.send(Note::single(content::HAS_READ_RECEIPT, reader, to).online_only(), &tips).await;
    }
}
