//! Incremental sync of group members and joined groups, over the version logs the store writes
//! with every change (OpenIM's `incrversion`): a client that holds a log's ID and a version gets
//! what changed since, or `full: true` when it cannot be told in one answer (another log ID, a
//! version from the future, more changes than [`SYNC_LIMIT`]), and then lists everything.

use openim_common::error::store_status;
use openim_storage::{VersionHead, version};
use tonic::Status;

use crate::GroupService;

/// Most changes one answer tells; more, and the client syncs in full (OpenIM's `syncLimit`).
pub const SYNC_LIMIT: u32 = 200;

/// A batch answer stops taking groups once it tells this many changes (OpenIM's
/// `MaxSyncPullNumber`).
pub const BATCH_LIMIT: usize = 500;

/// What changed in a log since the version a client holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub head: VersionHead,
    pub full: bool,
    pub insert: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
    /// The version at which the members' order last changed, if it did since.
    pub sort_version: u64,
    /// The group's own info changed (member logs), or its member count did.
    pub group_changed: bool,
}

impl Delta {
    /// How many entries it tells.
    pub fn len(&self) -> usize {
        self.insert.len() + self.update.len() + self.delete.len()
    }
}

impl GroupService {
    /// The changes to the log `kind`/`owner` after the client's `version` of `version_id`.
    pub(crate) async fn delta(&self, kind: i32, owner: &str, version_id: &str, version: u64) -> Result<Delta, Status> {
        let groups = &self.stores.groups;
        let head = groups.version_head(kind, owner).await.map_err(store_status)?;
        let full = |head: VersionHead| Delta { head, full: true, group_changed: true, ..Default::default() };
        if version_id.is_empty() || version == 0 || version_id != head.version_id || version > head.version {
            return Ok(full(head));
        }
        if version == head.version {
            return Ok(Delta { head, ..Default::default() });
        }
        let (entries, total) = groups.version_changes(kind, owner, version, SYNC_LIMIT).await.map_err(store_status)?;
        if total > entries.len() as u64 {
            return Ok(full(head));
        }
        let mut delta = Delta { head, ..Default::default() };
        for e in entries {
            if kind == version::GROUP_MEMBERS && e.entry_id == version::GROUP_INFO {
                delta.group_changed = true;
                continue;
            }
            if kind == version::GROUP_MEMBERS && e.entry_id == version::SORT {
                delta.sort_version = e.version;
                continue;
            }
            match e.state {
                version::INSERT => delta.insert.push(e.entry_id),
                version::DELETE => delta.delete.push(e.entry_id),
                _ => delta.update.push(e.entry_id),
            }
        }
        // A member change changes the group's member count.
        delta.group_changed |= kind == version::GROUP_MEMBERS && delta.len() > 0;
        Ok(delta)
    }
}
