//! Secrets: the administrator credential (`share.secret`, what `/auth/get_admin_token` checks),
//! the token-signing key (`share.token_key`), and the rules that keep published defaults out of a
//! production deployment.
//!
//! The two are separate on purpose. OpenIM signs tokens with the admin secret itself, so every
//! user token is an offline oracle for it: anyone holding one can guess secrets at GPU speed
//! until the HMAC matches, and then mint an administrator token. Here the signing key is never
//! sent by any client, and in embedded mode it is random and kept in the data directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest accepted production secret (characters).
pub const MIN_SECRET_LEN: usize = 32;

/// Values published in OpenIM's and this project's example files, or common enough that a
/// scanner tries them first.
pub const PUBLISHED_DEFAULTS: &[&str] =
    &["openIM123", "openIM", "openim", "123456", "password", "secret", "changeme", "root", "admin"];

/// The administrator secret this project ships in `config/share.yml` (standalone trials only).
pub const SHIPPED_ADMIN_SECRET: &str = "openIM123";

/// Why `value` is not acceptable as a production secret, or `None` when it is.
pub fn weakness(value: &str) -> Option<String> {
    if value.is_empty() {
        Some("is empty".into())
    } else if is_published_default(value) {
        Some(format!("is the published default `{value}`"))
    } else if value.chars().count() < MIN_SECRET_LEN {
        Some(format!("is shorter than {MIN_SECRET_LEN} characters"))
    } else {
        None
    }
}

/// Whether `value` is one of [`PUBLISHED_DEFAULTS`] (case-insensitive).
pub fn is_published_default(value: &str) -> bool {
    PUBLISHED_DEFAULTS.iter().any(|d| d.eq_ignore_ascii_case(value))
}

/// Compares a presented secret with the configured one in time independent of where they differ
/// (both are hashed first, so neither length nor content leaks through timing).
pub fn secret_matches(presented: &str, configured: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(configured.as_bytes());
    a.ct_eq(&b).into()
}

/// Whether every `host:port` in `addresses` is on this machine (a passwordless backend there is
/// a developer's setup; anywhere else it is an open door).
pub fn all_loopback(addresses: &[String]) -> bool {
    !addresses.is_empty()
        && addresses.iter().all(|a| {
            let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h).trim_matches(['[', ']']);
            host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        })
}

/// Where embedded mode keeps its generated signing key.
pub fn token_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("token.key")
}

/// The token-signing key: `configured` when set, else the one in `data_dir` (generated, 256 random
/// bits, on first use and kept there readable by the owner only, so tokens survive restarts).
pub fn token_key(configured: &str, data_dir: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let path = token_key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= MIN_SECRET_LEN => return Ok(key.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} holds no usable key (delete it to generate a new one)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read the token key {}", path.display())),
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let key = random_hex(32);
    write_private(&path, &key).with_context(|| format!("write the token key {}", path.display()))?;
    tracing::info!(path = %path.display(), "Generated the token-signing key.");
    Ok(key)
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` with `text`, readable by the owner only; fails if it exists (another process
/// won the race: the caller's next read takes that one).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => f.write_all(text.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_values_are_named() {
        assert_eq!(weakness("").as_deref(), Some("is empty"));
        assert!(weakness("openIM123").unwrap().contains("published default"));
        assert!(weakness("OPENIM123").unwrap().contains("published default"));
        assert!(weakness("a-short-one").unwrap().contains("shorter than 32"));
        assert_eq!(weakness(&"x".repeat(32)), None);
    }

    #[test]
    fn comparison_needs_the_whole_secret() {
        assert!(secret_matches("openIM123", "openIM123"));
        assert!(!secret_matches("openIM12", "openIM123"));
        assert!(!secret_matches("openIM1234", "openIM123"));
        assert!(!secret_matches("", "openIM123"));
    }

    #[test]
    fn loopback_addresses() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(all_loopback(&v(&["127.0.0.1:3306", "localhost:3306", "[::1]:3306"])));
        assert!(!all_loopback(&v(&["127.0.0.1:3306", "mysql:3306"])));
        assert!(!all_loopback(&v(&["10.0.0.1:6379"])));
        assert!(!all_loopback(&[]));
    }

    #[test]
    fn the_generated_key_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = token_key("", dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(token_key("", dir.path()).unwrap(), first, "a restart keeps the key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(token_key_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(token_key("configured", dir.path()).unwrap(), "configured");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(token_key("", other.path()).unwrap(), first, "each data directory has its own");
    }
}
