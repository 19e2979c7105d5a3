//! The embedded durable store: one SQLite database (WAL mode) holding users, relations, groups,
//! conversations, seqs, tokens and messages. Migrations are embedded and applied at open.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row as _, Sqlite, SqlitePool};

use crate::*;

/// Largest number of bound values per statement we generate (SQLite allows 32766).
const CHUNK: usize = 500;

pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one connection that writes: SQLite takes one writer at a time, and a second one
    /// would wait in SQLite's busy handler (sleeps of up to 100 ms) instead of in a queue.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/openim.db` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("create data directory {}: {e}", data_dir.display())))?;
        let path = data_dir.join("openim.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-16000")
            // Reads come straight from the page cache instead of a read() copy per page.
            .pragma("mmap_size", "268435456")
            // Checkpoint every ~40 MB of WAL instead of every 4 MB: the index pages every insert
            // touches are copied back once per checkpoint rather than ten times (checkpoints
            // were 14% of the server's CPU at 10k msg/s). A background PASSIVE checkpointer
            // was tried and measured worse on 2 cores: it competes for the same CPU.
            .pragma("wal_autocheckpoint", "10000")
            .pragma("journal_size_limit", "67108864");
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrate {}: {e}", path.display())))?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        Ok(Self { pool, writer })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

fn push_in<'a>(qb: &mut QueryBuilder<'a, Sqlite>, values: &'a [String]) {
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.as_str());
    }
    sep.push_unseparated(")");
}

fn decode_msg(bytes: &[u8]) -> StoreResult<MsgData> {
    MsgData::decode(bytes).map_err(|e| StoreError::Backend(format!("stored message does not decode: {e}")))
}

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: String,
    nickname: String,
    face_url: String,
    ex: String,
    app_manger_level: i32,
    global_recv_msg_opt: i32,
    create_time: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            user_id: r.user_id,
            nickname: r.nickname,
            face_url: r.face_url,
            ex: r.ex,
            app_manger_level: r.app_manger_level,
            global_recv_msg_opt: r.global_recv_msg_opt,
            create_time: r.create_time,
        }
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_users(&self, users: &[User]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for u in users {
            sqlx::query(
                "INSERT INTO users (user_id, nickname, face_url, ex, app_manger_level, global_recv_msg_opt, create_time) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&u.user_id)
            .bind(&u.nickname)
            .bind(&u.face_url)
            .bind(&u.ex)
            .bind(u.app_manger_level)
            .bind(u.global_recv_msg_opt)
            .bind(u.create_time)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("user {}", u.user_id)),
                other => other,
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT * FROM users WHERE user_id");
            push_in(&mut qb, chunk);
            let rows: Vec<UserRow> = qb.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().map(User::from));
        }
        Ok(out)
    }

    async fn update_user(&self, p: &UserPatch) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET nickname = COALESCE(?, nickname), face_url = COALESCE(?, face_url), \
             ex = COALESCE(?, ex), global_recv_msg_opt = COALESCE(?, global_recv_msg_opt) WHERE user_id = ?",
        )
        .bind(&p.nickname)
        .bind(&p.face_url)
        .bind(&p.ex)
        .bind(p.global_recv_msg_opt)
        .bind(&p.user_id)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {}", p.user_id)));
        }
        Ok(())
    }

    async fn page_users(&self, offset: u32, limit: u32) -> StoreResult<(Vec<User>, u64)> {
        let rows: Vec<UserRow> = sqlx::query_as("SELECT * FROM users ORDER BY create_time, user_id LIMIT ? OFFSET ?")
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok((rows.into_iter().map(User::from).collect(), total as u64))
    }
}

#[derive(sqlx::FromRow)]
struct FriendRow {
    owner_user_id: String,
    friend_user_id: String,
    remark: String,
    create_time: i64,
    add_source: i32,
    operator_user_id: String,
    ex: String,
}

#[async_trait]
impl FriendStore for SqliteStore {
    async fn add_friend(&self, f: &Friend) -> StoreResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO friends (owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&f.owner_user_id)
        .bind(&f.friend_user_id)
        .bind(&f.remark)
        .bind(f.create_time)
        .bind(f.add_source)
        .bind(&f.operator_user_id)
        .bind(&f.ex)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn remove_friend(&self, owner: &str, friend: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM friends WHERE owner_user_id = ? AND friend_user_id = ?")
            .bind(owner)
            .bind(friend)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn friends(&self, owner: &str, friend_ids: Option<&[String]>) -> StoreResult<Vec<Friend>> {
        let mut qb = QueryBuilder::new("SELECT * FROM friends WHERE owner_user_id = ");
        qb.push_bind(owner);
        if let Some(ids) = friend_ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            qb.push(" AND friend_user_id");
            push_in(&mut qb, ids);
        }
        qb.push(" ORDER BY create_time, friend_user_id");
        let rows: Vec<FriendRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| Friend {
                owner_user_id: r.owner_user_id,
                friend_user_id: r.friend_user_id,
                remark: r.remark,
                create_time: r.create_time,
                add_source: r.add_source,
                operator_user_id: r.operator_user_id,
                ex: r.ex,
            })
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    group_id: String,
    group_name: String,
    notification: String,
    introduction: String,
    face_url: String,
    owner_user_id: String,
    creator_user_id: String,
    create_time: i64,
    ex: String,
    status: i32,
    group_type: i32,
    need_verification: i32,
    look_member_info: i32,
    apply_member_friend: i32,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    group_id: String,
    user_id: String,
    role_level: i32,
    join_time: i64,
    nickname: String,
    face_url: String,
    join_source: i32,
    inviter_user_id: String,
    operator_user_id: String,
    mute_end_time: i64,
    ex: String,
}

impl From<MemberRow> for GroupMember {
    fn from(r: MemberRow) -> Self {
        GroupMember {
            group_id: r.group_id,
            user_id: r.user_id,
            role_level: r.role_level,
            join_time: r.join_time,
            nickname: r.nickname,
            face_url: r.face_url,
            join_source: r.join_source,
            inviter_user_id: r.inviter_user_id,
            operator_user_id: r.operator_user_id,
            mute_end_time: r.mute_end_time,
            ex: r.ex,
        }
    }
}

async fn insert_member(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    m: &GroupMember,
    or_ignore: bool,
) -> Result<u64, sqlx::Error> {
    let verb = if or_ignore { "INSERT OR IGNORE" } else { "INSERT" };
    let done = sqlx::query(&format!(
        "{verb} INTO group_members (group_id, user_id, role_level, join_time, nickname, face_url, join_source, \
         inviter_user_id, operator_user_id, mute_end_time, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&m.group_id)
    .bind(&m.user_id)
    .bind(m.role_level)
    .bind(m.join_time)
    .bind(&m.nickname)
    .bind(&m.face_url)
    .bind(m.join_source)
    .bind(&m.inviter_user_id)
    .bind(&m.operator_user_id)
    .bind(m.mute_end_time)
    .bind(&m.ex)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, g: &Group, members: &[GroupMember]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO groups (group_id, group_name, notification, introduction, face_url, owner_user_id, creator_user_id, \
             create_time, ex, status, group_type, need_verification, look_member_info, apply_member_friend) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&g.group_id)
        .bind(&g.group_name)
        .bind(&g.notification)
        .bind(&g.introduction)
        .bind(&g.face_url)
        .bind(&g.owner_user_id)
        .bind(&g.creator_user_id)
        .bind(g.create_time)
        .bind(&g.ex)
        .bind(g.status)
        .bind(g.group_type)
        .bind(g.need_verification)
        .bind(g.look_member_info)
        .bind(g.apply_member_friend)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Duplicate(_) => StoreError::Duplicate(format!("group {}", g.group_id)),
            other => other,
        })?;
        for m in members {
            insert_member(&mut tx, m, true).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_groups(&self, ids: &[String]) -> StoreResult<Vec<Group>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT * FROM groups WHERE group_id");
            push_in(&mut qb, chunk);
            let rows: Vec<GroupRow> = qb.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().map(|r| Group {
                group_id: r.group_id,
                group_name: r.group_name,
                notification: r.notification,
                introduction: r.introduction,
                face_url: r.face_url,
                owner_user_id: r.owner_user_id,
                creator_user_id: r.creator_user_id,
                create_time: r.create_time,
                ex: r.ex,
                status: r.status,
                group_type: r.group_type,
                need_verification: r.need_verification,
                look_member_info: r.look_member_info,
                apply_member_friend: r.apply_member_friend,
            }));
        }
        Ok(out)
    }

    async fn add_members(&self, members: &[GroupMember]) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut added = 0;
        for m in members {
            added += insert_member(&mut tx, m, true).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn members(&self, group_id: &str, offset: u32, limit: u32) -> StoreResult<(Vec<GroupMember>, u64)> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT * FROM group_members WHERE group_id = ? ORDER BY join_time, user_id LIMIT ? OFFSET ?",
        )
        .bind(group_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ?")
            .bind(group_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows.into_iter().map(GroupMember::from).collect(), total as u64))
    }

    async fn get_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupMember>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT * FROM group_members WHERE group_id = ");
            qb.push_bind(group_id);
            qb.push(" AND user_id");
            push_in(&mut qb, chunk);
            let rows: Vec<MemberRow> = qb.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().map(GroupMember::from));
        }
        Ok(out)
    }

    async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY join_time, user_id")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn joined_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY join_time, group_id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }
}

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

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<()> {
        // Multi-row statements: each statement is a round trip to SQLite's worker thread.
        let mut tx = self.writer.begin().await?;
        for chunk in msgs.chunks(CHUNK / 5) {
            let mut qb = QueryBuilder::new(
                "INSERT OR IGNORE INTO messages (conversation_id, seq, client_msg_id, send_time, data) ",
            );
            qb.push_values(chunk, |mut row, m| {
                row.push_bind(m.conversation_id.as_str())
                    .push_bind(m.msg.seq)
                    .push_bind(m.msg.client_msg_id.as_str())
                    .push_bind(m.msg.send_time)
                    .push_bind(m.msg.encode_to_vec());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>> {
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT data FROM messages WHERE conversation_id = ");
            qb.push_bind(conversation_id);
            qb.push(" AND seq IN (");
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s);
            }
            sep.push_unseparated(") ORDER BY seq");
            for row in qb.build().fetch_all(&self.pool).await? {
                out.push(decode_msg(row.get::<&[u8], _>(0))?);
            }
        }
        Ok(out)
    }

    async fn messages_in_range(
        &self,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: u32,
    ) -> StoreResult<Vec<MsgData>> {
        let rows = sqlx::query(
            "SELECT data FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(conversation_id)
        .bind(begin)
        .bind(end)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows.iter().map(|r| decode_msg(r.get::<&[u8], _>(0))).collect::<StoreResult<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    async fn latest_messages(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, MsgData>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for id in conversation_ids {
            let row = sqlx::query("SELECT data FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                out.insert(id.clone(), decode_msg(row.get::<&[u8], _>(0))?);
            }
        }
        Ok(out)
    }

    async fn existing_client_msg_ids(
        &self,
        conversation_id: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, MsgData>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT client_msg_id, data FROM messages WHERE conversation_id = ");
            qb.push_bind(conversation_id);
            qb.push(" AND client_msg_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), decode_msg(row.get::<&[u8], _>(1))?);
            }
        }
        Ok(out)
    }

    async fn existing_client_msg_ids_many(&self, keys: &[(String, String)]) -> StoreResult<HashSet<(String, String)>> {
        let mut out = HashSet::new();
        let mut conn = self.pool.acquire().await?;
        for chunk in keys.chunks(CHUNK / 2) {
            // A join on a VALUES list searches the unique index once per pair; the equivalent
            // `(a, b) IN (VALUES …)` scans the whole index.
            let mut qb = QueryBuilder::new("SELECT m.conversation_id, m.client_msg_id FROM (VALUES ");
            let mut sep = qb.separated(", ");
            for (conv, id) in chunk {
                sep.push("(").push_bind_unseparated(conv.as_str()).push_unseparated(", ");
                sep.push_bind_unseparated(id.as_str()).push_unseparated(")");
            }
            qb.push(") AS v JOIN messages m ON m.conversation_id = v.column1 AND m.client_msg_id = v.column2");
            for row in qb.build().fetch_all(&mut *conn).await? {
                out.insert((row.get::<String, _>(0), row.get::<String, _>(1)));
            }
        }
        Ok(out)
    }

    async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM messages WHERE send_time < ?").bind(send_time_ms).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SeqStore for SqliteStore {
    async fn allocate_seqs(&self, conversation_id: &str, count: i64) -> StoreResult<i64> {
        if count <= 0 {
            return Err(StoreError::Backend(format!("allocate {count} seqs: count must be positive")));
        }
        let max: i64 = sqlx::query_scalar(
            "INSERT INTO seqs (conversation_id, max_seq) VALUES (?, ?) \
             ON CONFLICT (conversation_id) DO UPDATE SET max_seq = max_seq + excluded.max_seq RETURNING max_seq",
        )
        .bind(conversation_id)
        .bind(count)
        .fetch_one(&self.writer)
        .await?;
        Ok(max - count + 1)
    }

    async fn allocate_seqs_many(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
        if let Some((conv, count)) = requests.iter().find(|(_, c)| *c <= 0) {
            return Err(StoreError::Backend(format!("allocate {count} seqs of {conv}: count must be positive")));
        }
        // One multi-row upsert per chunk with the counts summed per conversation, then the
        // reserved range split among the requests in order.
        let mut totals: Vec<(&str, i64)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (conv, count) in requests {
            let i = *index.entry(conv.as_str()).or_insert_with(|| {
                totals.push((conv.as_str(), 0));
                totals.len() - 1
            });
            totals[i].1 += count;
        }
        let mut next: HashMap<String, i64> = HashMap::with_capacity(totals.len());
        let mut tx = self.writer.begin().await?;
        for chunk in totals.chunks(CHUNK / 2) {
            let mut qb = QueryBuilder::new("INSERT INTO seqs (conversation_id, max_seq) ");
            qb.push_values(chunk, |mut row, (conv, count)| {
                row.push_bind(*conv).push_bind(*count);
            });
            qb.push(" ON CONFLICT (conversation_id) DO UPDATE SET max_seq = max_seq + excluded.max_seq RETURNING conversation_id, max_seq");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let conv: String = row.get(0);
                let max: i64 = row.get(1);
                let total = totals[index[conv.as_str()]].1;
                next.insert(conv, max - total + 1);
            }
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(requests.len());
        for (conv, count) in requests {
            let first = next.get_mut(conv).ok_or_else(|| StoreError::Backend(format!("no seq returned for {conv}")))?;
            out.push(*first);
            *first += count;
        }
        Ok(out)
    }

    async fn max_seqs(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for chunk in conversation_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT conversation_id, max_seq FROM seqs WHERE conversation_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        for id in conversation_ids {
            out.entry(id.clone()).or_insert(0);
        }
        Ok(out)
    }

    async fn set_read_seq(&self, user_id: &str, conversation_id: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO read_seqs (user_id, conversation_id, seq) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn read_seqs(&self, user_id: &str, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for chunk in conversation_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT conversation_id, seq FROM read_seqs WHERE user_id = ");
            qb.push_bind(user_id);
            qb.push(" AND conversation_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn add_token(&self, user_id: &str, platform_id: i32, token: &str, expire_at: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        // Expired entries of this user and platform are of no further use.
        sqlx::query("DELETE FROM tokens WHERE user_id = ? AND platform_id = ? AND expire_at < strftime('%s','now')")
            .bind(user_id)
            .bind(platform_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO tokens (user_id, platform_id, token, state, expire_at) VALUES (?, ?, ?, 0, ?)",
        )
        .bind(user_id)
        .bind(platform_id)
        .bind(token)
        .bind(expire_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_state(&self, user_id: &str, platform_id: i32, token: &str) -> StoreResult<Option<TokenState>> {
        let state: Option<i64> =
            sqlx::query_scalar("SELECT state FROM tokens WHERE user_id = ? AND platform_id = ? AND token = ?")
                .bind(user_id)
                .bind(platform_id)
                .bind(token)
                .fetch_optional(&self.pool)
                .await?;
        Ok(state.map(TokenState::from_i64))
    }

    async fn set_platform_tokens(
        &self,
        user_id: &str,
        platform_id: i32,
        state: TokenState,
        keep: Option<&str>,
    ) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE tokens SET state = ? WHERE user_id = ? AND platform_id = ? AND token != ?")
            .bind(state as i64)
            .bind(user_id)
            .bind(platform_id)
            .bind(keep.unwrap_or(""))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}
