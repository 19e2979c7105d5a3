//! The store traits, one per concern; [`crate::Stores`] bundles them as trait objects.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bytes::Bytes;
use openim_proto::pb::sdkws::MsgData;

use crate::model::*;
use crate::{StoreError, StoreResult};

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates all users or none; `Duplicate` names an ID that exists.
    async fn create_users(&self, users: &[User]) -> StoreResult<()>;
    /// The users that exist among `ids`, in no particular order.
    async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<User>>;
    /// Applies the set fields of `patch`; `NotFound` if the user does not exist.
    async fn update_user(&self, patch: &UserPatch) -> StoreResult<()>;
    /// Users ordered by creation, and the total count.
    async fn page_users(&self, offset: u32, limit: u32) -> StoreResult<(Vec<User>, u64)>;
}

#[async_trait]
pub trait FriendStore: Send + Sync {
    /// Adds `friend` to `owner`'s list (one direction); an existing entry is left as it is.
    async fn add_friend(&self, friend: &Friend) -> StoreResult<()>;
    async fn remove_friend(&self, owner: &str, friend: &str) -> StoreResult<()>;
    /// `owner`'s friends; all of them when `friend_ids` is `None`.
    async fn friends(&self, owner: &str, friend_ids: Option<&[String]>) -> StoreResult<Vec<Friend>>;
    /// Applies the set fields of `patch` to `owner`'s entries for `friend_ids`; IDs that are not
    /// `owner`'s friends are skipped. Returns how many entries were found.
    async fn update_friends(&self, owner: &str, friend_ids: &[String], patch: &FriendPatch) -> StoreResult<u64>;
    /// The users who have `friend` in their friend list.
    async fn owners_of(&self, friend: &str) -> StoreResult<Vec<String>>;
}

#[async_trait]
pub trait FriendRequestStore: Send + Sync {
    /// Records a pending application, replacing an earlier one from the same applicant to the
    /// same user (OpenIM keeps one per ordered pair).
    async fn put_friend_request(&self, request: &FriendRequest) -> StoreResult<()>;
    /// Marks the pending application `handled.from_user_id` → `handled.to_user_id` with the
    /// handle fields of `handled` and adds `friends` (both directions when accepted), all in one
    /// transaction; accepting also accepts a pending application the other way. `NotFound` when
    /// no such application is pending (none, or handled already).
    async fn handle_friend_request(&self, handled: &FriendRequest, friends: &[Friend]) -> StoreResult<()>;
    /// The application from `from` to `to`, if any.
    async fn friend_request(&self, from: &str, to: &str) -> StoreResult<Option<FriendRequest>>;
    /// Applications received by `user` (`received`) or sent by it, newest first, with the
    /// total; only those whose handle result is in `handle_results` unless that is empty.
    async fn friend_requests(
        &self,
        user: &str,
        received: bool,
        handle_results: &[i32],
        offset: u32,
        limit: u32,
    ) -> StoreResult<(Vec<FriendRequest>, u64)>;
    /// How many pending applications `user` received after `since` (unix milliseconds).
    async fn unhandled_friend_requests(&self, user: &str, since: i64) -> StoreResult<u64>;
}

#[async_trait]
pub trait BlackStore: Send + Sync {
    /// Adds entries; ones already there are left as they are.
    async fn add_blacks(&self, blacks: &[Black]) -> StoreResult<()>;
    /// Removes `block` from `owner`'s blacklist; `false` if it was not there.
    async fn remove_black(&self, owner: &str, block: &str) -> StoreResult<bool>;
    /// `owner`'s blacklist, oldest first; all of it when `block_ids` is `None`.
    async fn blacks(&self, owner: &str, block_ids: Option<&[String]>) -> StoreResult<Vec<Black>>;
}

#[async_trait]
pub trait UserCommandStore: Send + Sync {
    /// Adds the entry, or replaces the value and ex of the one with its (user, type, uuid);
    /// the first creation time stays. Returns whether it was new.
    async fn put_user_command(&self, command: &UserCommand) -> StoreResult<bool>;
    /// Sets what is given of `value` and `ex`; false if there is no such entry.
    async fn update_user_command(
        &self,
        user: &str,
        command_type: i32,
        uuid: &str,
        value: Option<&str>,
        ex: Option<&str>,
    ) -> StoreResult<bool>;
    /// False if there was no such entry.
    async fn delete_user_command(&self, user: &str, command_type: i32, uuid: &str) -> StoreResult<bool>;
    /// The user's entries (of one type, or all), oldest first.
    async fn user_commands(&self, user: &str, command_type: Option<i32>) -> StoreResult<Vec<UserCommand>>;
    /// How many entries the user has.
    async fn count_user_commands(&self, user: &str) -> StoreResult<u64>;
}

/// Named objects (`/object/*`): names → stored content.
#[async_trait]
pub trait ObjectRecordStore: Send + Sync {
    /// Sets the record of `name`, replacing one there was.
    async fn put_object(&self, object: &ObjectRecord) -> StoreResult<()>;
    async fn object(&self, name: &str) -> StoreResult<Option<ObjectRecord>>;
    /// Removes the record of `name`; the one removed, if there was one.
    async fn delete_object(&self, name: &str) -> StoreResult<Option<ObjectRecord>>;
    /// How many names point at `key` (content with none may be deleted).
    async fn key_refs(&self, key: &str) -> StoreResult<u64>;
    /// Up to `limit` objects of the groups given (all groups when empty) created before
    /// `before` (Unix ms), oldest first.
    async fn objects_before(&self, before: i64, groups: &[String], limit: usize) -> StoreResult<Vec<ObjectRecord>>;
}

/// What `/third/*` keeps: FCM tokens, app badges and the client logs apps upload.
#[async_trait]
pub trait ThirdStore: Send + Sync {
    /// Sets the token of (account, platform), valid until `expire_time` (Unix ms).
    async fn set_fcm_token(&self, account: &str, platform_id: i32, token: &str, expire_time: i64) -> StoreResult<()>;
    /// The token of (account, platform) if one is set and valid at `now` (Unix ms).
    async fn fcm_token(&self, account: &str, platform_id: i32, now: i64) -> StoreResult<Option<String>>;
    async fn set_app_badge(&self, user: &str, unread_count: i32) -> StoreResult<()>;
    async fn app_badge(&self, user: &str) -> StoreResult<Option<i32>>;
    /// Adds logs; a log ID already taken is `Duplicate`.
    async fn add_logs(&self, logs: &[ClientLog]) -> StoreResult<()>;
    /// The logs with these IDs.
    async fn logs(&self, ids: &[String]) -> StoreResult<Vec<ClientLog>>;
    /// Deletes the logs with these IDs; how many there were.
    async fn delete_logs(&self, ids: &[String]) -> StoreResult<u64>;
    /// Logs created in `start..=end` (Unix ms) of users whose ID contains `keyword` (all when
    /// empty), newest first: the page `offset..offset + limit` and the total.
    async fn search_logs(
        &self,
        keyword: &str,
        start: i64,
        end: i64,
        offset: u32,
        limit: u32,
    ) -> StoreResult<(u64, Vec<ClientLog>)>;
}

/// Presence subscriptions a user made over REST (`/user/subscribe_users_status`).
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Adds the targets (already subscribed ones stay as they are).
    async fn subscribe(&self, user: &str, targets: &[String], now: i64) -> StoreResult<()>;
    /// Removes the targets.
    async fn unsubscribe(&self, user: &str, targets: &[String]) -> StoreResult<()>;
    /// The user's targets, oldest subscription first.
    async fn subscriptions(&self, user: &str) -> StoreResult<Vec<String>>;
}

#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the group with its first members; `Duplicate` if the group ID exists. Starts the
    /// group's member log and records the group in each member's joined-group log.
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> StoreResult<VersionHead>;
    async fn get_groups(&self, ids: &[String]) -> StoreResult<Vec<Group>>;
    /// Applies `patch` (nothing if it is empty); the member log records a change of the group's
    /// info. `NotFound` if there is no such group.
    async fn update_group(&self, group_id: &str, patch: &GroupPatch) -> StoreResult<VersionHead>;
    /// Adds members (all of one group); ones already in it are skipped. Returns the users added
    /// and the group's member log after it.
    async fn add_members(&self, members: &[GroupMember]) -> StoreResult<(Vec<String>, VersionHead)>;
    /// Removes members; returns the users removed and the member log after it.
    async fn remove_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<(Vec<String>, VersionHead)>;
    /// Applies each patch to its member (members not in the group are skipped); a role change
    /// also records that the members' order changed.
    async fn update_members(&self, group_id: &str, patches: &[(String, MemberPatch)]) -> StoreResult<VersionHead>;
    /// Makes `new_owner` the owner and gives `old_owner` the role `new_owner` had, in one
    /// transaction.
    async fn transfer_owner(&self, group_id: &str, old_owner: &str, new_owner: &str) -> StoreResult<VersionHead>;
    /// Members ordered by join time, and the total count.
    async fn members(&self, group_id: &str, offset: u32, limit: u32) -> StoreResult<(Vec<GroupMember>, u64)>;
    /// The given members that exist.
    async fn get_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupMember>>;
    async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>>;
    /// How many members each of the groups has (groups without members are left out).
    async fn member_counts(&self, group_ids: &[String]) -> StoreResult<HashMap<String, u64>>;
    /// The owner and admins of the group, owner first.
    async fn managers(&self, group_id: &str) -> StoreResult<Vec<GroupMember>>;
    async fn joined_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// The groups `user_id` owns or administers.
    async fn managed_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Groups not dismissed whose name contains `name` (all when empty), newest first, and how
    /// many match.
    async fn search_groups(&self, name: &str, offset: u32, limit: u32) -> StoreResult<(Vec<Group>, u64)>;

    /// Stores the requests, each replacing an earlier one of its (group, user).
    async fn put_group_requests(&self, requests: &[GroupRequest]) -> StoreResult<()>;
    async fn group_request(&self, group_id: &str, user_id: &str) -> StoreResult<Option<GroupRequest>>;
    /// Answers a pending request and, when `join` is given, adds that member in the same
    /// transaction. `NotFound` if there is no pending request. Returns the member log after it
    /// when a member was added.
    async fn answer_group_request(
        &self,
        answer: &GroupRequestAnswer,
        join: Option<&GroupMember>,
    ) -> StoreResult<Option<VersionHead>>;
    /// Requests to join any of the groups, newest first, and how many match.
    async fn group_requests_to(
        &self,
        group_ids: &[String],
        filter: &RequestFilter,
    ) -> StoreResult<(Vec<GroupRequest>, u64)>;
    /// `user_id`'s requests (to the given groups; any when empty), newest first, and how many match.
    async fn group_requests_from(
        &self,
        user_id: &str,
        group_ids: &[String],
        filter: &RequestFilter,
    ) -> StoreResult<(Vec<GroupRequest>, u64)>;
    /// The requests of the given users to one group.
    async fn group_requests_of(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupRequest>>;
    /// Pending requests to any of the groups made after `since` (unix milliseconds).
    async fn pending_group_requests(&self, group_ids: &[String], since: i64) -> StoreResult<u64>;

    /// The head of a version log ([`version`] kinds), started (version 0) if it does not exist.
    async fn version_head(&self, kind: i32, owner_id: &str) -> StoreResult<VersionHead>;
    /// The entries changed after `since`, oldest first, at most `limit` of them, and how many
    /// there are.
    async fn version_changes(
        &self,
        kind: i32,
        owner_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<(Vec<VersionEntry>, u64)>;
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates the conversations that do not exist yet; existing ones keep their settings.
    async fn ensure_conversations(&self, convs: &[Conversation]) -> StoreResult<()>;
    /// `owner`'s conversations; all of them when `ids` is `None`.
    async fn conversations(&self, owner: &str, ids: Option<&[String]>) -> StoreResult<Vec<Conversation>>;
    /// Applies `patch` to the conversation `base.conversation_id` of each of `owners`, creating it
    /// (from `base`: type, peer, group) for owners who do not have it yet; one transaction.
    async fn set_conversations(
        &self,
        owners: &[String],
        base: &Conversation,
        patch: &ConversationPatch,
    ) -> StoreResult<()>;
    /// Which of `owners` receive the conversation's messages normally (`recvMsgOpt` 0, or no
    /// entry yet): those to push offline.
    async fn receiving_owners(&self, conversation_id: &str, owners: &[String]) -> StoreResult<Vec<String>>;
    /// Sets the lowest seq `owner` may read in each conversation (after a clear); conversations
    /// `owner` does not have are skipped.
    async fn set_min_seqs(&self, owner: &str, min_seqs: &[(String, i64)]) -> StoreResult<()>;
    /// Sets the lowest seq everyone who has the conversation may read (a clear for everyone),
    /// in one statement however many members a group has.
    async fn set_everyones_min_seq(&self, conversation_id: &str, min_seq: i64) -> StoreResult<()>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores messages; a (conversation, seq) or (conversation, clientMsgID) already stored is
    /// left as it is, so a retried batch stores nothing twice. Returns how many were new.
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<u64>;
    /// The messages of `conversation_id` with the given seqs (missing ones are absent).
    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>>;
    /// Up to `limit` messages with `begin <= seq <= end`, in ascending seq order, taking the
    /// newest ones of the range when it holds more than `limit`.
    async fn messages_in_range(
        &self,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: u32,
    ) -> StoreResult<Vec<MsgData>>;
    /// The newest message of each conversation that has one.
    async fn latest_messages(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, MsgData>>;
    /// The stored messages of the conversation among `keys` (clientMsgID, send time), by
    /// clientMsgID, for deduplication. A message is found by both parts: a replayed bus record
    /// carries the send time it was stored with. Stores with an index on the clientMsgID alone
    /// (MySQL, MongoDB) match on it alone, and so also find a client's resend, which rpc-msg
    /// gave a new send time; the embedded store keeps no such index (see ARCHITECTURE.md).
    async fn existing_client_msg_ids(
        &self,
        conversation_id: &str,
        keys: &[(String, i64)],
    ) -> StoreResult<HashMap<String, MsgData>>;
    /// Which of the (conversation, clientMsgID, send time) keys are already stored, as
    /// (conversation, clientMsgID); one round trip for a whole batch where the backend allows.
    async fn existing_client_msg_ids_many(
        &self,
        keys: &[(String, String, i64)],
    ) -> StoreResult<HashSet<(String, String)>> {
        let mut by_conv: HashMap<&str, Vec<(String, i64)>> = HashMap::new();
        for (conv, id, send_time) in keys {
            by_conv.entry(conv).or_default().push((id.clone(), *send_time));
        }
        let mut out = HashSet::new();
        for (conv, ids) in by_conv {
            for id in self.existing_client_msg_ids(conv, &ids).await?.into_keys() {
                out.insert((conv.to_owned(), id));
            }
        }
        Ok(out)
    }
    /// Chat messages (single and group conversations; not notifications) sent in
    /// `[from_ms, to_ms)`, in (send time, conversation, seq) order, after `after`; at most
    /// `limit`. Each comes with its position, to continue from.
    async fn scan_chat_messages(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<&ScanPosition>,
        limit: u32,
    ) -> StoreResult<Vec<(ScanPosition, MsgData)>>;
    /// Deletes messages sent before `send_time_ms`, and their marks; returns how many.
    async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64>;
    /// Marks the message at `seq` revoked. `false` if it was revoked already (the first mark
    /// stays). The caller checks that the message exists.
    async fn revoke(&self, conversation_id: &str, seq: i64, mark: &RevokeMark) -> StoreResult<bool>;
    /// Deletes messages for `user_id` alone; seqs holding no message are ignored.
    async fn delete_for_user(&self, conversation_id: &str, seqs: &[i64], user_id: &str) -> StoreResult<()>;
    /// Deletes messages for everyone, with their marks; returns how many were stored. Their seqs
    /// stay used (pulls answer them as deleted).
    async fn delete_physically(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<u64>;
    /// The marks of the messages with `begin <= seq <= end` that have any.
    async fn marks(&self, conversation_id: &str, begin: i64, end: i64) -> StoreResult<HashMap<i64, MsgMarks>>;
}

#[async_trait]
pub trait SeqStore: Send + Sync {
    /// Reserves `count` consecutive seqs of a conversation and returns the first. Seqs start at
    /// 1, never repeat and leave no gaps when every reservation is used.
    async fn allocate_seqs(&self, conversation_id: &str, count: i64) -> StoreResult<i64>;
    /// [`SeqStore::allocate_seqs`] for several conversations at once (one round trip where the
    /// backend allows); returns the first seq of each request, in order.
    async fn allocate_seqs_many(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
        check_seq_counts(requests)?;
        let mut out = Vec::with_capacity(requests.len());
        for (conv, count) in requests {
            out.push(self.allocate_seqs(conv, *count).await?);
        }
        Ok(out)
    }
    /// Drops what this store caches about a conversation's seqs, so the next allocation starts
    /// after everything the durable store ever reserved (after seqs were found handed out
    /// twice, e.g. by a Redis failover to a replica that lagged). Nothing to do by default.
    async fn resync(&self, _conversation_id: &str) -> StoreResult<()> {
        Ok(())
    }
    /// The highest allocated seq of each conversation (0 when none).
    async fn max_seqs(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>>;
    /// Raises a user's read seq of a conversation (never lowers it).
    async fn set_read_seq(&self, user_id: &str, conversation_id: &str, seq: i64) -> StoreResult<()>;
    async fn read_seqs(&self, user_id: &str, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a token issued to a user on a platform, valid until `expire_at` (unix seconds).
    async fn add_token(&self, user_id: &str, platform_id: i32, token: &str, expire_at: i64) -> StoreResult<()>;
    /// The state of a token, `None` if it was never issued (or has been cleaned up).
    async fn token_state(&self, user_id: &str, platform_id: i32, token: &str) -> StoreResult<Option<TokenState>>;
    /// Sets the state of every current token of a user on a platform except `keep`.
    async fn set_platform_tokens(
        &self,
        user_id: &str,
        platform_id: i32,
        state: TokenState,
        keep: Option<&str>,
    ) -> StoreResult<u64>;
}

#[async_trait]
pub trait OnlineStore: Send + Sync {
    /// Records that `user_id` has (`online`) or no longer has a connection on `platform_id` at
    /// the gateway `gateway_id`.
    async fn set_online(&self, user_id: &str, platform_id: i32, gateway_id: &str, online: bool) -> StoreResult<()>;
    /// Where each user is online: (platform, gateway) pairs; users offline everywhere are absent.
    async fn online(&self, user_ids: &[String]) -> StoreResult<HashMap<String, Vec<(i32, String)>>>;
    /// Forgets everything a gateway reported (it restarted or went away).
    async fn clear_gateway(&self, gateway_id: &str) -> StoreResult<()>;
    /// Tells the registry that a gateway is alive; registries shared by several processes
    /// ignore the entries of a gateway that stops calling this (it died without saying so).
    async fn heartbeat(&self, _gateway_id: &str) -> StoreResult<()> {
        Ok(())
    }
}

/// Rejects a seq request for zero or fewer seqs (a caller bug) before anything is allocated.
pub fn check_seq_counts(requests: &[(String, i64)]) -> StoreResult<()> {
    match requests.iter().find(|(_, c)| *c <= 0) {
        Some((conv, count)) => {
            Err(StoreError::Backend(format!("allocate {count} seqs of {conv}: count must be positive")))
        }
        None => Ok(()),
    }
}

/// One record taken from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub key: String,
    pub payload: Bytes,
}

impl BusMessage {
    /// What keeps records in order: [`order_key`] of the key.
    pub fn order_key(&self) -> &str {
        order_key(&self.key)
    }
}

/// The part of a conversation ID that a chat (`si_<a>_<b>`, `sg_<group>`) shares with its
/// notification conversation (`n_<a>_<b>`, `n_<group>`); any other key is its own. A shown group
/// notification is published as itself and then as its copy in the chat, and apps rely on
/// getting them in that order, so a bus keeps the records of one order key in order, not just
/// those of one key.
pub fn order_key(key: &str) -> &str {
    ["n_", "sg_", "si_"].iter().find_map(|p| key.strip_prefix(p)).unwrap_or(key)
}

/// A message bus with Kafka's shape: keyed records (those of one [`order_key`] stay in order),
/// consumer groups, batches, and commits after the work is durable.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes records; returns when the bus has accepted them.
    async fn publish(&self, topic: &str, records: Vec<BusMessage>) -> StoreResult<()>;
    /// Joins `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str) -> StoreResult<Box<dyn Subscription>>;
}

#[async_trait]
pub trait Subscription: Send {
    /// Waits for at least one record and returns up to `max`; `None` once the bus is closed and
    /// drained.
    async fn next_batch(&mut self, max: usize) -> StoreResult<Option<Vec<BusMessage>>>;
    /// Marks everything returned so far as done.
    async fn commit(&mut self) -> StoreResult<()>;
}

/// Remembers which keys were seen, so that a redelivered record is acted on once (a push
/// replayed after a crash is not sent twice).
#[async_trait]
pub trait DedupStore: Send + Sync {
    /// Records `keys`; for each, whether it was not seen within the last `ttl`.
    async fn first_time(&self, keys: &[String], ttl: std::time::Duration) -> StoreResult<Vec<bool>>;
    /// Forgets `keys` (the work they marked failed and will be done again).
    async fn forget(&self, keys: &[String]) -> StoreResult<()>;
    /// Whether `key` is recorded (and not expired), without recording it.
    async fn marked(&self, key: &str) -> StoreResult<bool>;
}
