//! The MongoDB message store: one document per message in the `msgs` collection, keyed by
//! conversation and seq, with the indexes the read paths use:
//! - `(conversation_id, seq)` unique — pulls by seq, ranges, latest;
//! - `(conversation_id, client_msg_id)` unique — dedup of resent and replayed messages;
//! - `send_time` — retention clean-up by `openim-crontask`.
//!
//! The client connects on first use; [`MongoMessages::prepare`] creates the indexes and is
//! retried until the server answers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};
use mongodb::options::{ClientOptions, Credential, FindOptions, IndexOptions, InsertManyOptions, Tls, TlsOptions};
use mongodb::{Client, Collection, IndexModel};
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;
use tokio::sync::OnceCell;

use crate::config::MongoConfig;
use crate::*;

pub struct MongoMessages {
    msgs: Collection<Document>,
    client: Client,
    database: String,
    where_: String,
    prepared: OnceCell<()>,
}

impl MongoMessages {
    /// A store whose client connects on first use; nothing is contacted yet.
    pub async fn connect_lazy(cfg: &MongoConfig) -> StoreResult<Self> {
        let uri = cfg.uri();
        let where_ = cfg.redacted_uri();
        let mut opts = ClientOptions::parse(&uri)
            .await
            .map_err(|e| StoreError::Backend(format!("mongodb {where_}: bad address: {e}")))?;
        if !cfg.username.is_empty() {
            opts.credential = Some(
                Credential::builder()
                    .username(cfg.username.clone())
                    .password(cfg.password.clone())
                    .source(cfg.auth_source.clone())
                    .build(),
            );
        }
        opts.max_pool_size = Some(cfg.max_pool_size);
        opts.server_selection_timeout = Some(Duration::from_secs(cfg.connect_timeout_secs));
        opts.connect_timeout = Some(Duration::from_secs(cfg.connect_timeout_secs));
        opts.app_name = Some("openim-rs".into());
        if cfg.tls.enabled {
            let tls = &cfg.tls;
            let file = |f: &str| (!f.is_empty()).then(|| std::path::PathBuf::from(f));
            opts.tls = Some(Tls::Enabled(
                TlsOptions::builder().ca_file_path(file(&tls.ca_file)).cert_key_file_path(file(&tls.cert_file)).build(),
            ));
        }
        let client = Client::with_options(opts).map_err(|e| StoreError::Backend(format!("mongodb {where_}: {e}")))?;
        let msgs = client.database(&cfg.database).collection::<Document>("msgs");
        Ok(Self { msgs, client, database: cfg.database.clone(), where_, prepared: OnceCell::new() })
    }

    /// Creates the indexes (an existing index is left as it is). Done once per process.
    pub async fn prepare(&self) -> StoreResult<()> {
        self.prepared
            .get_or_try_init(|| async {
                let unique = |keys: Document, name: &str| {
                    IndexModel::builder()
                        .keys(keys)
                        .options(IndexOptions::builder().unique(true).name(name.to_owned()).build())
                        .build()
                };
                let indexes = vec![
                    unique(doc! { "conversation_id": 1, "seq": 1 }, "conversation_seq"),
                    unique(doc! { "conversation_id": 1, "client_msg_id": 1 }, "conversation_client_msg_id"),
                    IndexModel::builder()
                        .keys(doc! { "send_time": 1 })
                        .options(IndexOptions::builder().name("send_time".to_owned()).build())
                        .build(),
                ];
                self.msgs.create_indexes(indexes).await.map_err(|e| self.fault("create indexes", e))?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Checks that the server answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        self.prepare().await?;
        self.client
            .database(&self.database)
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.fault("ping", e))?;
        Ok(())
    }

    fn fault(&self, what: &str, e: mongodb::error::Error) -> StoreError {
        StoreError::Backend(format!("mongodb {}: {what}: {e}", self.where_))
    }

    async fn find(&self, filter: Document, opts: FindOptions) -> StoreResult<Vec<Document>> {
        self.prepare().await?;
        let cursor = self.msgs.find(filter).with_options(opts).await.map_err(|e| self.fault("find", e))?;
        cursor.try_collect().await.map_err(|e| self.fault("read", e))
    }
}

fn to_doc(m: &StoredMsg) -> Document {
    doc! {
        "conversation_id": &m.conversation_id,
        "seq": m.msg.seq,
        "client_msg_id": &m.msg.client_msg_id,
        "send_time": m.msg.send_time,
        "data": Binary { subtype: BinarySubtype::Generic, bytes: m.msg.encode_to_vec() },
    }
}

fn decode(d: &Document) -> StoreResult<MsgData> {
    match d.get("data") {
        Some(Bson::Binary(b)) => crate::sql::decode_msg(&b.bytes),
        _ => Err(StoreError::Backend("stored message has no `data`".into())),
    }
}

/// When every write error of a bulk insert is a duplicate key (the message is already there),
/// how many there were; `None` for any other failure.
fn duplicates(e: &mongodb::error::Error) -> Option<usize> {
    match &*e.kind {
        mongodb::error::ErrorKind::InsertMany(failure) if failure.write_concern_error.is_none() => {
            let errs = failure.write_errors.as_ref()?;
            errs.iter().all(|w| w.code == 11000).then_some(errs.len())
        }
        _ => None,
    }
}

#[async_trait]
impl MessageStore for MongoMessages {
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<u64> {
        if msgs.is_empty() {
            return Ok(0);
        }
        self.prepare().await?;
        let docs: Vec<Document> = msgs.iter().map(to_doc).collect();
        // Unordered: a message already stored (a retry) fails alone and the rest go in.
        match self.msgs.insert_many(docs).with_options(InsertManyOptions::builder().ordered(false).build()).await {
            Ok(done) => Ok(done.inserted_ids.len() as u64),
            Err(e) => match duplicates(&e) {
                Some(dups) => Ok((msgs.len() - dups) as u64),
                None => Err(self.fault("insert", e)),
            },
        }
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>> {
        let filter = doc! { "conversation_id": conversation_id, "seq": { "$in": seqs } };
        let docs = self.find(filter, FindOptions::builder().sort(doc! { "seq": 1 }).build()).await?;
        docs.iter().map(decode).collect()
    }

    async fn messages_in_range(
        &self,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: u32,
    ) -> StoreResult<Vec<MsgData>> {
        let filter = doc! { "conversation_id": conversation_id, "seq": { "$gte": begin, "$lte": end } };
        let opts = FindOptions::builder().sort(doc! { "seq": -1 }).limit(i64::from(limit)).build();
        let mut out = self.find(filter, opts).await?.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    async fn latest_messages(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, MsgData>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for id in conversation_ids {
            let opts = FindOptions::builder().sort(doc! { "seq": -1 }).limit(1).build();
            if let Some(d) = self.find(doc! { "conversation_id": id }, opts).await?.first() {
                out.insert(id.clone(), decode(d)?);
            }
        }
        Ok(out)
    }

    async fn existing_client_msg_ids(
        &self,
        conversation_id: &str,
        keys: &[(String, i64)],
    ) -> StoreResult<HashMap<String, MsgData>> {
        // The unique (conversation, clientMsgID) index finds resends too: no need of the time.
        let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
        let filter = doc! { "conversation_id": conversation_id, "client_msg_id": { "$in": ids } };
        let mut out = HashMap::new();
        for d in self.find(filter, FindOptions::default()).await? {
            let m = decode(&d)?;
            out.insert(m.client_msg_id.clone(), m);
        }
        Ok(out)
    }

    async fn existing_client_msg_ids_many(
        &self,
        keys: &[(String, String, i64)],
    ) -> StoreResult<HashSet<(String, String)>> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let mut by_conv: HashMap<&str, Vec<&str>> = HashMap::new();
        for (conv, id, _) in keys {
            by_conv.entry(conv).or_default().push(id);
        }
        let clauses: Vec<Document> = by_conv
            .into_iter()
            .map(|(conv, ids)| doc! { "conversation_id": conv, "client_msg_id": { "$in": ids } })
            .collect();
        let opts =
            FindOptions::builder().projection(doc! { "conversation_id": 1, "client_msg_id": 1, "_id": 0 }).build();
        let docs = self.find(doc! { "$or": clauses }, opts).await?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                Some((d.get_str("conversation_id").ok()?.to_owned(), d.get_str("client_msg_id").ok()?.to_owned()))
            })
            .collect())
    }

    async fn scan_chat_messages(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<&ScanPosition>,
        limit: u32,
    ) -> StoreResult<Vec<(ScanPosition, MsgData)>> {
        // Prefixes as ranges ('`' follows '_'): plain comparisons every Mongo-wire server has.
        let mut all = vec![
            doc! { "send_time": { "$gte": from_ms, "$lt": to_ms } },
            doc! { "$or": [
                { "conversation_id": { "$gte": "si_", "$lt": "si`" } },
                { "conversation_id": { "$gte": "sg_", "$lt": "sg`" } },
            ] },
        ];
        if let Some(p) = after {
            all.push(doc! { "$or": [
                { "send_time": { "$gt": p.send_time } },
                { "send_time": p.send_time, "conversation_id": { "$gt": &p.conversation_id } },
                { "send_time": p.send_time, "conversation_id": &p.conversation_id, "seq": { "$gt": p.seq } },
            ] });
        }
        let filter = doc! { "$and": all };
        let opts = FindOptions::builder()
            .sort(doc! { "send_time": 1, "conversation_id": 1, "seq": 1 })
            .limit(i64::from(limit))
            .build();
        let docs = self.find(filter, opts).await?;
        docs.iter()
            .map(|d| {
                let position = ScanPosition {
                    send_time: d.get_i64("send_time").unwrap_or_default(),
                    conversation_id: d.get_str("conversation_id").unwrap_or_default().to_owned(),
                    seq: d.get_i64("seq").unwrap_or_default(),
                };
                Ok((position, decode(d)?))
            })
            .collect()
    }

    async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64> {
        self.prepare().await?;
        let done = self
            .msgs
            .delete_many(doc! { "send_time": { "$lt": send_time_ms } })
            .await
            .map_err(|e| self.fault("delete", e))?;
        Ok(done.deleted_count)
    }

    async fn revoke(&self, conversation_id: &str, seq: i64, mark: &RevokeMark) -> StoreResult<bool> {
        self.prepare().await?;
        let done = self
            .msgs
            .update_one(
                doc! { "conversation_id": conversation_id, "seq": seq, "revoke": { "$exists": false } },
                doc! { "$set": { "revoke": {
                    "role": mark.role,
                    "user_id": &mark.user_id,
                    "nickname": &mark.nickname,
                    "time": mark.time,
                } } },
            )
            .await
            .map_err(|e| self.fault("revoke", e))?;
        Ok(done.modified_count == 1)
    }

    async fn delete_for_user(&self, conversation_id: &str, seqs: &[i64], user_id: &str) -> StoreResult<()> {
        self.prepare().await?;
        self.msgs
            .update_many(
                doc! { "conversation_id": conversation_id, "seq": { "$in": seqs } },
                doc! { "$addToSet": { "del_list": user_id } },
            )
            .await
            .map_err(|e| self.fault("delete for a user", e))?;
        Ok(())
    }

    async fn delete_physically(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<u64> {
        self.prepare().await?;
        let done = self
            .msgs
            .delete_many(doc! { "conversation_id": conversation_id, "seq": { "$in": seqs } })
            .await
            .map_err(|e| self.fault("delete", e))?;
        Ok(done.deleted_count)
    }

    async fn marks(&self, conversation_id: &str, begin: i64, end: i64) -> StoreResult<HashMap<i64, MsgMarks>> {
        let filter = doc! {
            "conversation_id": conversation_id,
            "seq": { "$gte": begin, "$lte": end },
            "$or": [ { "revoke": { "$exists": true } }, { "del_list": { "$exists": true } } ],
        };
        let opts = FindOptions::builder().projection(doc! { "seq": 1, "revoke": 1, "del_list": 1, "_id": 0 }).build();
        let mut out = HashMap::new();
        for d in self.find(filter, opts).await? {
            let seq = d.get_i64("seq").map_err(|e| StoreError::Backend(format!("stored message without seq: {e}")))?;
            let revoke = d.get_document("revoke").ok().map(|r| RevokeMark {
                role: r.get_i32("role").unwrap_or_default(),
                user_id: r.get_str("user_id").unwrap_or_default().to_owned(),
                nickname: r.get_str("nickname").unwrap_or_default().to_owned(),
                time: r.get_i64("time").unwrap_or_default(),
            });
            let mut deleted_for: Vec<String> = d
                .get_array("del_list")
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            deleted_for.sort();
            out.insert(seq, MsgMarks { revoke, deleted_for });
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl crate::Backend for MongoMessages {
    async fn prepare(&self) -> StoreResult<()> {
        MongoMessages::prepare(self).await
    }

    async fn ping(&self) -> StoreResult<()> {
        MongoMessages::ping(self).await
    }
}
