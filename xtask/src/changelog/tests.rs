//! `cargo xtask changelog` on a fixture repository with tagged Conventional Commits, against a
//! golden file (`golden.md`; `UPDATE_GOLDEN=1` rewrites it after a deliberate change).

use std::process::Command;

use super::*;

/// A repository whose commits have fixed authors and dates, so their hashes never change.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut day = 0;
    let mut run = |args: &[&str]| {
        day += 1;
        let date = format!("2026-01-{:02}T12:00:00+00:00", day.min(28));
        let out = Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_NAME", "A Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "A Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["init", "-q", "-b", "main"]);
    run(&["commit", "-q", "--allow-empty", "-m", "feat(gateway): WebSocket gateway with gob envelopes"]);
    run(&["commit", "-q", "--allow-empty", "-m", "docs: README"]);
    run(&["commit", "-q", "--allow-empty", "-m", "an old commit before the rules"]);
    run(&["tag", "v0.1.0"]);
    run(&["commit", "-q", "--allow-empty", "-m", "fix(api): errCode 1001 for a missing token"]);
    run(&["commit", "-q", "--allow-empty", "-m", "feat(push)!: push only to the gateway holding the user"]);
    run(&["commit", "-q", "--allow-empty", "-m", "perf(transfer): batch inserts\n\nOne round trip per batch."]);
    run(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "refactor(storage): one trait per concern\n\nBREAKING CHANGE: adapters implement the new traits",
    ]);
    run(&["tag", "v0.2.0"]);
    run(&["tag", "not-a-version"]);
    run(&["commit", "-q", "--allow-empty", "-m", "ci: cache the target directory"]);
    run(&["checkout", "-q", "-b", "feat/x"]);
    run(&["commit", "-q", "--allow-empty", "-m", "feat(api): /msg/revoke_msg"]);
    run(&["checkout", "-q", "main"]);
    run(&["merge", "-q", "--no-ff", "-m", "Merge branch 'feat/x'", "feat/x"]);
    run(&["tag", "v1.0.0-rc.1"]);
    run(&["commit", "-q", "--allow-empty", "-m", "fix(gateway): close idle connections"]);
    run(&["commit", "-q", "--allow-empty", "-m", "test: golden changelog"]);
    dir
}

#[test]
fn the_changelog_of_a_fixture_repository_matches_the_golden_file() {
    let dir = fixture();
    let releases = history(dir.path()).unwrap();
    let tags: Vec<Option<&str>> = releases.iter().map(|r| r.tag.as_deref()).collect();
    assert_eq!(tags, [None, Some("v1.0.0-rc.1"), Some("v0.2.0"), Some("v0.1.0")]);
    let text = render(&releases, "https://github.com/example/im");
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/changelog/golden.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(text, want, "the changelog differs from {} (UPDATE_GOLDEN=1 rewrites it)", golden.display());

    // Release notes: one release's section, without its heading.
    let notes = section(&releases[2], "https://github.com/example/im", false);
    assert!(notes.starts_with("### ⚠ Breaking changes\n"), "{notes}");
    assert!(!notes.contains("## [0.2.0]"), "{notes}");
}
