//! Conversations.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{SqliteStore, push_in};
use crate::*;

#[derive(sqlx::FromRow)]
struct ConversationRow {
    owner_user_id: String,
    conversation_id: String,
    conversation_type: i32,
    user_id: String,
    group_id: String,
    recv_msg_opt: i32,
    is_pinned: bool,
    is_private_chat: bool,
    burn_duration: i32,
    group_at_type: i32,
    attached_info: String,
    ex: String,
    min_seq: i64,
    create_time: i64,
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn ensure_conversations(&self, convs: &[Conversation]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for c in convs {
            sqlx::query(
                "INSERT OR IGNORE INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id, \
                 recv_msg_opt, is_pinned, is_private_chat, burn_duration, group_at_type, attached_info, ex, min_seq, create_time) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.owner_user_id)
            .bind(&c.conversation_id)
            .bind(c.conversation_type)
            .bind(&c.user_id)
            .bind(&c.group_id)
            .bind(c.recv_msg_opt)
            .bind(c.is_pinned)
            .bind(c.is_private_chat)
            .bind(c.burn_duration)
            .bind(c.group_at_type)
            .bind(&c.attached_info)
            .bind(&c.ex)
            .bind(c.min_seq)
            .bind(c.create_time)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn conversations(&self, owner: &str, ids: Option<&[String]>) -> StoreResult<Vec<Conversation>> {
        let mut qb = QueryBuilder::new("SELECT * FROM conversations WHERE owner_user_id = ");
        qb.push_bind(owner);
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            qb.push(" AND conversation_id");
            push_in(&mut qb, ids);
        }
        qb.push(" ORDER BY create_time, conversation_id");
        let rows: Vec<ConversationRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| Conversation {
                owner_user_id: r.owner_user_id,
                conversation_id: r.conversation_id,
                conversation_type: r.conversation_type,
                user_id: r.user_id,
                group_id: r.group_id,
                recv_msg_opt: r.recv_msg_opt,
                is_pinned: r.is_pinned,
                is_private_chat: r.is_private_chat,
                burn_duration: r.burn_duration,
                group_at_type: r.group_at_type,
                attached_info: r.attached_info,
                ex: r.ex,
                min_seq: r.min_seq,
                create_time: r.create_time,
            })
            .collect())
    }
}
