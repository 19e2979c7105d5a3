//! The store code the SQLite and MySQL adapters share. Most statements read the same in both
//! dialects (`?` placeholders, backquoted names, which SQLite also accepts), so each trait impl
//! here is written once and expanded for both adapters by [`for_sql_stores!`]; inside it `Store`
//! names the adapter. What differs (insert-or-ignore, upserts, seq allocation, the batched
//! dedup lookup) is behind the [`Dialect`] methods and constants each adapter defines.
//!
//! Generic code over `sqlx::Database` was the alternative: every function would need a dozen
//! higher-ranked bounds (`for<'c> &'c mut DB::Connection: Executor<'c>`, `&str: Encode<DB>` …)
//! that Rust does not infer from a trait, for the same result.
//!
//! Rows map straight onto the model types (`sqlx::FromRow` on them, see `sql_record!`), so there
//! are no row structs.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;

use crate::*;

/// Largest number of bound values per statement we generate (SQLite allows 32766, MySQL 65535).
pub(crate) const CHUNK: usize = 500;

/// Expands the items once for [`SqliteStore`](crate::sqlite::SqliteStore) and once for
/// [`MySqlStore`](crate::mysql::MySqlStore), with `Store` naming the adapter. Each adapter has
/// `pool` (reads) and `writer` (writes; the same pool on MySQL, one connection on SQLite).
macro_rules! for_sql_stores {
    ($($item:item)*) => {
        const _: () = {
            use crate::sqlite::SqliteStore as Store;
            $($item)*
        };
        const _: () = {
            use crate::mysql::MySqlStore as Store;
            $($item)*
        };
    };
}

/// What each SQL adapter does in its own dialect.
#[async_trait]
pub(crate) trait Dialect {
    type Db: sqlx::Database;
    /// `INSERT OR IGNORE` (SQLite) or `INSERT IGNORE` (MySQL).
    const INSERT_IGNORE: &'static str;
    /// Upserts `(user_id, conversation_id, seq)` into `read_seqs`, keeping the larger seq.
    const UPSERT_READ_SEQ: &'static str;
    /// Moves the version log `(?1 kind, ?2 owner)` one version on, starting it at 1 with the ID
    /// `?3` if it does not exist.
    const BUMP_VERSION_HEAD: &'static str;
    /// Deletes at most `?2` messages sent before `?1`.
    const DELETE_MESSAGES_BEFORE: &'static str;
    /// Messages per insert statement and (conversation, clientMsgID) pairs per lookup on the
    /// transfer's path: one statement per batch where the server takes it. Every statement is a
    /// round trip (to SQLite's worker thread, or over the network), and on a busy machine each
    /// hand-over between threads can wait for a time slice.
    const BATCH_ROWS: usize;

    /// Adds `total` to each conversation's max seq (creating it at 0) and returns the new maxima.
    async fn add_to_max_seqs(&self, totals: &[(&str, i64)]) -> StoreResult<HashMap<String, i64>>;
    /// Whether the store keeps a unique (conversation, clientMsgID) index (MySQL). Without one
    /// (SQLite) a stored message is found by its send time, which its replays carry too.
    const UNIQUE_CLIENT_MSG_ID: bool;
    /// Which (conversation, clientMsgID, send time) keys are stored, for at most `BATCH_ROWS`.
    async fn stored_pairs(&self, keys: &[(String, String, i64)]) -> StoreResult<HashSet<(String, String)>>;
}

/// Appends ` IN (?, ?, …)` with `values` bound.
pub(crate) fn push_in<'a, DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<'a, DB>, values: &'a [String])
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.as_str());
    }
    sep.push_unseparated(")");
}

/// Appends ` IN (?, ?, …)` with the integers bound.
pub(crate) fn push_in_i64<'a, DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<'a, DB>, values: &'a [i64])
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(*v);
    }
    sep.push_unseparated(")");
}

pub(crate) fn decode_msg(bytes: &[u8]) -> StoreResult<MsgData> {
    MsgData::decode(bytes).map_err(|e| StoreError::Backend(format!("stored message does not decode: {e}")))
}

/// Turns a unique-key violation into `Duplicate` naming `what`.
pub(crate) fn duplicate_as(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match StoreError::from(e) {
        StoreError::Duplicate(_) => StoreError::Duplicate(what()),
        other => other,
    }
}

/// The current time in unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Sums the counts per conversation (first appearance order) after checking them.
pub(crate) fn seq_totals(requests: &[(String, i64)]) -> StoreResult<Vec<(&str, i64)>> {
    check_seq_counts(requests)?;
    let mut totals: Vec<(&str, i64)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (conv, count) in requests {
        let i = *index.entry(conv.as_str()).or_insert_with(|| {
            totals.push((conv.as_str(), 0));
            totals.len() - 1
        });
        totals[i].1 += count;
    }
    Ok(totals)
}

/// Splits the ranges reserved by [`Dialect::add_to_max_seqs`] among the requests, in order.
pub(crate) fn split_seq_ranges(
    requests: &[(String, i64)],
    totals: &[(&str, i64)],
    maxima: HashMap<String, i64>,
) -> StoreResult<Vec<i64>> {
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(totals.len());
    for (conv, total) in totals {
        let max = maxima.get(*conv).ok_or_else(|| StoreError::Backend(format!("no seq returned for {conv}")))?;
        next.insert(conv, max - total + 1);
    }
    Ok(requests
        .iter()
        .map(|(conv, count)| {
            let first = next.get_mut(conv.as_str()).expect("every request's conversation has a total");
            let out = *first;
            *first += count;
            out
        })
        .collect())
}

mod conversations;
mod groups;
mod messages;
pub(crate) mod migrations;
mod objects;
mod relations;
mod tokens;
mod users;
mod versions;
