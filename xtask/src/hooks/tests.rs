//! The hooks' rules, and the hooks on temporary git repositories.

use super::*;

const OK: &[&str] = &[
    "feat(gateway): close idle connections after read_deadline_secs",
    "fix: keep the order of a conversation's messages on retry",
    "docs: README section on the offline bundle",
    "refactor(storage)!: one trait per concern",
    "feat!: drop the v2 REST paths\n\nBREAKING CHANGE: clients must use the v3 paths",
    "perf(push): batch the online lookups",
    "build(deps): bump tokio to 1.48",
    "ci: run zizmor on the workflows",
    "chore: tidy the workspace manifest",
    "style: rustfmt",
    "test(api): golden cases for the JSON envelope",
    "revert: feat(gateway): close idle connections",
    "fix(rpc-msg): reject an empty clientMsgID\n\nThe SDK never sends one; a bad client did.\n\nSigned-off-by: A Dev <dev@example.com>",
    "Merge branch 'main' into feat/read-receipts",
    "Merge pull request #12 from someone/fix/typo",
    "Revert \"feat(gateway): close idle connections\"\n\nThis reverts commit 860c1904.",
    "fixup! feat(gateway): close idle connections",
    "feat(api): the message\n# Please enter the commit message for your changes.\n# Lines starting with '#' will be ignored.",
];

/// (message, what the error names)
const REFUSED: &[(&str, &str)] = &[
    ("", "empty"),
    ("added a feature", "not a Conventional Commit"),
    ("feature: add read receipts", "`feature` is not a commit type"),
    ("Feat: add read receipts", "lower case"),
    ("FIX: the bug", "lower case"),
    ("feat(gateway) close idle connections", "not a Conventional Commit"),
    ("feat: ", "not a Conventional Commit"),
    ("feat: ok", "too short"),
    ("fix: handle the empty token.", "period"),
    ("feat:close idle connections", "one space"),
    ("feat:  close idle connections", "one space"),
    ("feat(Gateway): close idle connections", "scope"),
    ("feat(my scope): close idle connections", "without spaces"),
    (
        "feat(gateway): close idle connections after the configured read deadline has passed without a frame",
        "at most 72",
    ),
    ("fix: a\n\nSigned-off-by: A <a@x>\nSigned-off-by: A <a@x>", "too short"),
    ("fix: the token check\n\nSigned-off-by: A <a@x>\nSigned-off-by: A <a@x>", "twice"),
    ("wip", "not a Conventional Commit"),
];

#[test]
fn conventional_commit_messages_are_accepted() {
    for m in OK {
        check_message(m, Strictness::Local).unwrap_or_else(|e| panic!("{m:?} refused: {e:#}"));
    }
}

#[test]
fn other_messages_are_refused_saying_why_with_an_example() {
    assert!(OK.len() + REFUSED.len() >= 20);
    for (m, why) in REFUSED {
        let err = format!("{:#}", check_message(m, Strictness::Local).expect_err(m));
        assert!(err.contains(why), "{m:?}: {err}");
        if !why.contains("twice") {
            assert!(err.contains(EXAMPLE), "{m:?} shows an example: {err}");
        }
    }
    // A pull request may not carry a fixup.
    let err = check_message("fixup! feat(gateway): x y z", Strictness::PullRequest).unwrap_err();
    assert!(err.to_string().contains("squash"), "{err}");
}

#[test]
fn branch_and_tag_names() {
    for ok in
        ["main", "release-v1.2", "release-v0.10", "feat/read-receipts", "fix/issue-12", "docs/readme", "ci/zizmor"]
    {
        check_branch(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for ok in ["hotfix/v1.2.4", "dependabot/cargo/tokio-1.48", "refactor/storage/traits"] {
        check_branch(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "master",
        "develop",
        "release-v1",
        "release-v1.2.3",
        "release-v01.2",
        "feature/x",
        "feat/",
        "feat/Read-Receipts",
        "feat/read receipts",
        "feat/-x",
        "my-branch",
    ] {
        let err = check_branch(bad).expect_err(bad);
        assert!(err.contains(bad), "{err}");
    }
    assert!(check_ref("refs/tags/v1.2.3").is_ok());
    assert!(check_ref("refs/tags/v1.2.3-rc.1").is_ok());
    assert!(check_ref("refs/tags/1.2.3").unwrap_err().contains("vX.Y.Z"));
    assert!(check_ref("refs/tags/v1.2").is_err());
    let stdin = "refs/heads/x 1111111111111111111111111111111111111111 refs/heads/feat/ok 0000000000000000000000000000000000000000\n\
                 (delete) 0000000000000000000000000000000000000000 refs/heads/old-name 2222222222222222222222222222222222222222\n";
    assert_eq!(pushed_refs(stdin).collect::<Vec<_>>(), ["refs/heads/feat/ok"], "deletions are not checked");
}

/// A private key and tokens, built from pieces so that this file does not trip the hook itself.
fn fakes() -> Vec<(String, &'static str)> {
    vec![
        (format!("-----BEGIN {}PRIVATE KEY-----\nMIIE\n", "RSA "), "a private key"),
        (format!("-----BEGIN {} PRIVATE KEY-----\nb3Bl\n", "OPENSSH"), "a private key"),
        (format!("token: {}_{}", "ghp", "a".repeat(36)), "a GitHub token"),
        (format!("DOCKERHUB_TOKEN={}_{}", "dckr_pat", "Ab1-".repeat(7)), "a Docker Hub access token"),
        (format!("key = \"{}{}\"", "LTAI", "5tAbCdEfGhIjKlMn"), "an Alibaba Cloud access key"),
        (format!("{}{}", "AKIA", "ABCDEFGHIJKLMNOP"), "an AWS access key"),
    ]
}

#[test]
fn secrets_are_recognised() {
    for (text, what) in fakes() {
        assert_eq!(secret_in(text.as_bytes()), Some(what), "{text}");
    }
    for clean in ["password: openIM123", "sha256:0123abcd", "the private key is in the vault", "ghp_short"] {
        assert_eq!(secret_in(clean.as_bytes()), None, "{clean}");
    }
}

/// A repository in a temporary directory, with a committer.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "A Dev"],
        &["config", "user.email", "dev@example.com"],
    ] {
        git(dir.path(), args).unwrap();
    }
    dir
}

#[test]
fn commit_msg_adds_one_sign_off_and_refuses_bad_messages() {
    let dir = repo();
    let file = dir.path().join("COMMIT_EDITMSG");
    std::fs::write(&file, "feat(api): add the offline bundle\n\nWith a load script.\n").unwrap();
    commit_msg(dir.path(), &file).unwrap();
    let signed = std::fs::read_to_string(&file).unwrap();
    assert!(signed.ends_with("\n\nSigned-off-by: A Dev <dev@example.com>\n"), "{signed}");
    // Run again (amend): still one.
    commit_msg(dir.path(), &file).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), signed);
    // Beside another trailer, not in a new paragraph.
    std::fs::write(&file, "fix: the token check\n\nCo-authored-by: B <b@example.com>\n").unwrap();
    commit_msg(dir.path(), &file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Co-authored-by: B <b@example.com>\nSigned-off-by: A Dev <dev@example.com>"), "{text}");
    // A bad message is refused and left as it was.
    std::fs::write(&file, "fixed stuff\n").unwrap();
    assert!(commit_msg(dir.path(), &file).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "fixed stuff\n");
}

#[test]
fn pre_commit_checks_what_is_staged() {
    let dir = repo();
    let root = dir.path();
    let write = |path: &str, data: &[u8]| {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    write("src/good.rs", b"fn main() {\n    println!(\"hi\");\n}\n");
    write("README.md", b"# x\n");
    git(root, &["add", "."]).unwrap();
    assert_eq!(pre_commit(root, 1024).unwrap(), Vec::<String>::new());

    write("src/bad.rs", b"fn main(){println!(\"hi\");}\n");
    write("big.bin", &vec![0u8; 2048]);
    write("deploy/key.pem", fakes()[0].0.as_bytes());
    git(root, &["add", "."]).unwrap();
    // What is staged counts, not the working tree: fixing bad.rs unstaged changes nothing.
    write("src/bad.rs", b"fn main() {\n    println!(\"hi\");\n}\n");
    let problems = pre_commit(root, 1024).unwrap();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("big.bin: 2048 bytes, over the limit of 1024")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("deploy/key.pem: looks like a private key")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.starts_with("src/bad.rs: not formatted")), "{problems:#?}");
    git(root, &["add", "src/bad.rs"]).unwrap();
    git(root, &["rm", "-q", "--cached", "big.bin", "deploy/key.pem"]).unwrap();
    assert_eq!(pre_commit(root, 1024).unwrap(), Vec::<String>::new());
}

#[test]
fn the_shims_call_cargo_xtask() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for hook in ["commit-msg", "pre-commit", "pre-push"] {
        let path = root.join(".githooks").join(hook);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("exec cargo --quiet xtask hook {hook} \"$@\"")), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        assert!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0, "{hook} is executable");
    }
}

#[test]
fn a_range_is_checked_commit_by_commit() {
    let dir = repo();
    let root = dir.path();
    for (i, message) in
        ["feat: the first feature", "fixed it", "fixup! feat: the first feature", "docs: the readme"].iter().enumerate()
    {
        std::fs::write(root.join("f"), i.to_string()).unwrap();
        git(root, &["add", "f"]).unwrap();
        git(root, &["commit", "-q", "--no-verify", "-m", message]).unwrap();
    }
    let problems = check_range(root, "HEAD~3..HEAD").unwrap();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("squash"), "{problems:#?}");
    assert!(problems[1].contains("not a Conventional Commit"), "{problems:#?}");
    assert!(check_range(root, "HEAD~1..HEAD").unwrap().is_empty());
}
