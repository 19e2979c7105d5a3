//! Conversations.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{Dialect as _, push_in};
use crate::*;

for_sql_stores! {
    #[async_trait]
    impl ConversationStore for Store {
        async fn ensure_conversations(&self, convs: &[Conversation]) -> StoreResult<()> {
            let stmt = format!(
                "{} INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id, \
                 recv_msg_opt, is_pinned, is_private_chat, burn_duration, group_at_type, attached_info, ex, min_seq, \
                 create_time, msg_destruct_time, is_msg_destruct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                Store::INSERT_IGNORE
            );
            let mut tx = self.writer.begin().await?;
            for c in convs {
                sqlx::query(&stmt)
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
                    .bind(c.msg_destruct_time)
                    .bind(c.is_msg_destruct)
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
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn set_conversations(&self, owners: &[String], base: &Conversation, p: &ConversationPatch) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for owner in owners {
                sqlx::query(&format!(
                    "{} INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id, \
                     create_time) VALUES (?, ?, ?, ?, ?, ?)",
                    Store::INSERT_IGNORE
                ))
                .bind(owner)
                .bind(&base.conversation_id)
                .bind(base.conversation_type)
                .bind(&base.user_id)
                .bind(&base.group_id)
                .bind(base.create_time)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE conversations SET recv_msg_opt = COALESCE(?, recv_msg_opt), \
                     is_pinned = COALESCE(?, is_pinned), is_private_chat = COALESCE(?, is_private_chat), \
                     burn_duration = COALESCE(?, burn_duration), group_at_type = COALESCE(?, group_at_type), \
                     attached_info = COALESCE(?, attached_info), ex = COALESCE(?, ex), \
                     msg_destruct_time = COALESCE(?, msg_destruct_time), is_msg_destruct = COALESCE(?, is_msg_destruct) \
                     WHERE owner_user_id = ? AND conversation_id = ?",
                )
                .bind(p.recv_msg_opt)
                .bind(p.is_pinned)
                .bind(p.is_private_chat)
                .bind(p.burn_duration)
                .bind(p.group_at_type)
                .bind(p.attached_info.as_deref())
                .bind(p.ex.as_deref())
                .bind(p.msg_destruct_time)
                .bind(p.is_msg_destruct)
                .bind(owner)
                .bind(&base.conversation_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn receiving_owners(&self, conversation_id: &str, owners: &[String]) -> StoreResult<Vec<String>> {
            let mut muted = std::collections::HashSet::new();
            for chunk in owners.chunks(super::CHUNK) {
                let mut qb = QueryBuilder::new("SELECT owner_user_id FROM conversations WHERE conversation_id = ");
                qb.push_bind(conversation_id);
                qb.push(" AND recv_msg_opt <> 0 AND owner_user_id");
                push_in(&mut qb, chunk);
                let rows: Vec<String> = qb.build_query_scalar().fetch_all(&self.pool).await?;
                muted.extend(rows);
            }
            Ok(owners.iter().filter(|o| !muted.contains(*o)).cloned().collect())
        }

        async fn set_min_seqs(&self, owner: &str, min_seqs: &[(String, i64)]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for (conv, seq) in min_seqs {
                sqlx::query("UPDATE conversations SET min_seq = ? WHERE owner_user_id = ? AND conversation_id = ?")
                    .bind(seq)
                    .bind(owner)
                    .bind(conv)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn set_everyones_min_seq(&self, conversation_id: &str, min_seq: i64) -> StoreResult<()> {
            sqlx::query("UPDATE conversations SET min_seq = ? WHERE conversation_id = ?")
                .bind(min_seq)
                .bind(conversation_id)
                .execute(&self.writer)
                .await?;
            Ok(())
        }
    }
}
