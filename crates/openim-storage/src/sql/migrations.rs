//! The SQL schema migrations, compiled into the binary.
//!
//! sqlx's `migrate!` macro would do this, but any sqlx proc macro makes Cargo build sqlx's
//! macro crate for the host with every driver feature on: sqlx-core, sqlx-mysql, sqlx-sqlite and
//! a C build of SQLite, once more, only to read a directory at compile time. `include_str!` and
//! sqlx's public [`MigrationSource`] give the same migrations (version, description, SHA-384
//! checksum, `-- no-transaction`) that `migrate!` would: a test compares them with what sqlx
//! reads from the directory, so a file added there but not listed here fails it.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::{StoreError, StoreResult};

/// Migrations as (`<VERSION>_<DESCRIPTION>.sql`, SQL) pairs, in the directory's naming scheme.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded(pub &'static [(&'static str, &'static str)]);

pub(crate) const MYSQL: Embedded = Embedded(&[
    ("0001_initial.sql", include_str!("../../migrations/mysql/0001_initial.sql")),
    ("0002_message_marks.sql", include_str!("../../migrations/mysql/0002_message_marks.sql")),
    ("0003_friend_requests_and_blacks.sql", include_str!("../../migrations/mysql/0003_friend_requests_and_blacks.sql")),
    (
        "0004_user_commands_and_subscriptions.sql",
        include_str!("../../migrations/mysql/0004_user_commands_and_subscriptions.sql"),
    ),
    ("0005_group_lifecycle.sql", include_str!("../../migrations/mysql/0005_group_lifecycle.sql")),
    ("0006_objects.sql", include_str!("../../migrations/mysql/0006_objects.sql")),
    ("0007_third.sql", include_str!("../../migrations/mysql/0007_third.sql")),
]);

pub(crate) const SQLITE: Embedded = Embedded(&[
    ("0001_initial.sql", include_str!("../../migrations/sqlite/0001_initial.sql")),
    ("0002_shared_bus_and_online.sql", include_str!("../../migrations/sqlite/0002_shared_bus_and_online.sql")),
    ("0003_message_marks.sql", include_str!("../../migrations/sqlite/0003_message_marks.sql")),
    (
        "0004_friend_requests_and_blacks.sql",
        include_str!("../../migrations/sqlite/0004_friend_requests_and_blacks.sql"),
    ),
    (
        "0005_user_commands_and_subscriptions.sql",
        include_str!("../../migrations/sqlite/0005_user_commands_and_subscriptions.sql"),
    ),
    ("0006_group_lifecycle.sql", include_str!("../../migrations/sqlite/0006_group_lifecycle.sql")),
    ("0007_objects.sql", include_str!("../../migrations/sqlite/0007_objects.sql")),
    ("0008_third.sql", include_str!("../../migrations/sqlite/0008_third.sql")),
    ("0009_no_client_msg_id_index.sql", include_str!("../../migrations/sqlite/0009_no_client_msg_id_index.sql")),
]);

impl Embedded {
    /// A migrator over these migrations.
    pub(crate) async fn migrator(self) -> StoreResult<Migrator> {
        Migrator::new(self).await.map_err(|e| StoreError::Backend(format!("embedded migrations: {e}")))
    }

    /// The migrations, named and checksummed as sqlx names a directory's files.
    pub(crate) fn migrations(self) -> Result<Vec<Migration>, String> {
        self.0.iter().map(|(file, sql)| migration(file, sql)).collect()
    }
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { self.migrations().map_err(BoxDynError::from) })
    }
}

fn migration(file: &str, sql: &'static str) -> Result<Migration, String> {
    let bad = || format!("migration `{file}`: the name must be <VERSION>_<DESCRIPTION>.sql");
    let (version, rest) = file.split_once('_').ok_or_else(bad)?;
    let version: i64 = version.parse().map_err(|_| bad())?;
    let description = rest.strip_suffix(".sql").ok_or_else(bad)?;
    // sqlx's reversible migrations (`.up.sql`/`.down.sql`) are not used here.
    if description.ends_with(".up") || description.ends_with(".down") {
        return Err(format!("migration `{file}`: only simple (one-way) migrations are supported"));
    }
    Ok(Migration::new(
        version,
        Cow::Owned(description.replace('_', " ")),
        MigrationType::Simple,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What sqlx itself reads from the directory: the migrations `migrate!` would have embedded.
    async fn from_directory(dir: &str) -> Vec<Migration> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
        let migrator = Migrator::new(path.as_path()).await.expect("read the migrations directory");
        migrator.iter().cloned().collect()
    }

    fn key(m: &Migration) -> (i64, String, Vec<u8>, bool) {
        (m.version, m.description.to_string(), m.checksum.to_vec(), m.no_tx)
    }

    #[tokio::test]
    async fn embedded_migrations_match_the_directories() {
        for (dir, embedded) in [("mysql", MYSQL), ("sqlite", SQLITE)] {
            let ours: Vec<_> = embedded.migrator().await.unwrap().iter().map(key).collect();
            let sqlx: Vec<_> = from_directory(dir).await.iter().map(key).collect();
            assert_eq!(
                ours, sqlx,
                "crates/openim-storage/src/sql/migrations.rs lists other migrations than migrations/{dir}/: \
                 add every file there to the list"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        for bad in ["initial.sql", "x_initial.sql", "0001_initial.txt", "0001_a.up.sql"] {
            assert!(migration(bad, "").is_err(), "{bad}");
        }
        let m = migration("0007_two_words.sql", "-- no-transaction\nSELECT 1").unwrap();
        assert_eq!((m.version, &*m.description, m.no_tx), (7, "two words", true));
    }
}
