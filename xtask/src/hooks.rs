//! Git hooks. `.githooks/<name>` are shims calling `cargo xtask hook <name>`; `cargo xtask hooks
//! install` points `core.hooksPath` at them. The rules live here, so they are tested, and CI
//! checks pull requests with the same ones (`check_message`, `check_branch`).
//!
//! - `commit-msg`: Conventional Commits (`type(scope)!: subject`, parsed by `git-conventional`),
//!   header length, a `Signed-off-by` trailer added when missing, duplicates refused;
//! - `pre-commit`: staged Rust files formatted, no staged file over the size limit, no private
//!   keys or registry tokens;
//! - `pre-push`: branch names, clippy with warnings denied, the fast tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::tags::git;

/// The commit types the project uses.
pub const TYPES: &[&str] =
    &["build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor", "revert", "style", "test"];
/// The longest first line (`type(scope): subject`).
pub const MAX_HEADER: usize = 72;
/// The shortest subject.
pub const MIN_SUBJECT: usize = 3;
/// A staged file larger than this is refused (`OPENIM_HOOK_MAX_BYTES` overrides).
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

const EXAMPLE: &str = "feat(gateway): close idle connections after read_deadline_secs";

#[derive(clap::Args)]
pub struct Hook {
    #[command(subcommand)]
    hook: HookName,
}

#[derive(clap::Subcommand)]
enum HookName {
    /// Checks the message in FILE; adds a Signed-off-by trailer when missing.
    CommitMsg { file: PathBuf },
    /// Checks the staged files.
    PreCommit,
    /// Checks the pushed branches (refs on stdin, as git gives them), then clippy and fast tests.
    PrePush { remote: Option<String>, url: Option<String> },
}

#[derive(clap::Args)]
pub struct Hooks {
    #[command(subcommand)]
    action: HooksAction,
}

#[derive(clap::Subcommand)]
enum HooksAction {
    /// Use .githooks/ for this clone (`git config core.hooksPath .githooks`).
    Install,
    /// Stop using them.
    Uninstall,
}

impl Hooks {
    pub fn run(self) -> anyhow::Result<()> {
        let root = git_root(Path::new("."))?;
        match self.action {
            HooksAction::Install => {
                git(&root, &["config", "core.hooksPath", ".githooks"])?;
                eprintln!("hooks installed: commit-msg, pre-commit, pre-push run `cargo xtask hook …`");
            }
            HooksAction::Uninstall => {
                // Exit code 5: the key was not set. Nothing to undo.
                let status =
                    Command::new("git").current_dir(&root).args(["config", "--unset", "core.hooksPath"]).status()?;
                if !status.success() && status.code() != Some(5) {
                    bail!("git config --unset core.hooksPath: {status}");
                }
                eprintln!("hooks uninstalled");
            }
        }
        Ok(())
    }
}

impl Hook {
    pub fn run(self) -> anyhow::Result<()> {
        let root = git_root(Path::new("."))?;
        match self.hook {
            HookName::CommitMsg { file } => commit_msg(&root, &file),
            HookName::PreCommit => {
                let max = match std::env::var("OPENIM_HOOK_MAX_BYTES") {
                    Ok(v) => v.parse().with_context(|| format!("OPENIM_HOOK_MAX_BYTES={v:?} is not a byte count"))?,
                    Err(_) => MAX_FILE_BYTES,
                };
                let problems = pre_commit(&root, max)?;
                if problems.is_empty() {
                    return Ok(());
                }
                bail!("pre-commit refused the commit:\n  {}", problems.join("\n  "));
            }
            HookName::PrePush { .. } => {
                let mut refs = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut refs)?;
                let problems: Vec<String> = pushed_refs(&refs).filter_map(|r| check_ref(r).err()).collect();
                if !problems.is_empty() {
                    bail!("pre-push refused the push:\n  {}", problems.join("\n  "));
                }
                for (what, args) in [
                    ("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"][..]),
                    ("fast tests", &["nextest", "run", "--workspace", "--lib"][..]),
                ] {
                    eprintln!("==> pre-push: {what}: cargo {}", args.join(" "));
                    let status = Command::new(env!("CARGO")).current_dir(&root).args(args).status()?;
                    if !status.success() {
                        bail!("pre-push: {what} failed (`git push --no-verify` skips the hook)");
                    }
                }
                Ok(())
            }
        }
    }
}

/// `cargo xtask commits`: the commit messages of a range and a pull request's title, checked
/// with the hook's rules (stricter: no fixups), as CI checks a pull request.
#[derive(clap::Args)]
pub struct Commits {
    /// The commits to check, e.g. `origin/main..HEAD`.
    #[arg(long)]
    range: Option<String>,
    /// A pull request title (it becomes the squash commit's first line).
    #[arg(long)]
    title: Option<String>,
}

impl Commits {
    pub fn run(self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if let Some(range) = &self.range {
            problems.extend(check_range(Path::new("."), range)?);
        }
        if let Some(title) = &self.title
            && let Err(e) = check_message(title, Strictness::PullRequest)
        {
            problems.push(format!("pull request title: {e:#}"));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        eprintln!("==> commit messages follow the rules");
        Ok(())
    }
}

/// The problems of each commit of `range` (`<short sha>: …`).
pub fn check_range(dir: &Path, range: &str) -> anyhow::Result<Vec<String>> {
    let log = git(dir, &["log", "--format=%h%x00%B%x1e", range])?;
    Ok(log
        .split('\x1e')
        .filter_map(|entry| entry.trim_start().split_once('\0'))
        .filter_map(|(sha, message)| {
            check_message(message, Strictness::PullRequest).err().map(|e| format!("{sha}: {e:#}"))
        })
        .collect())
}

fn git_root(dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?.trim()))
}

/// How strict: a local commit may be a `fixup!` to squash later; a pull request's may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    Local,
    PullRequest,
}

/// The message without git's comment lines and trailing blank lines.
fn cleaned(message: &str) -> String {
    let lines: Vec<&str> = message.lines().filter(|l| !l.starts_with('#')).map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// Checks a commit message (or a pull request title) against the rules; the error says what is
/// wrong and shows a correct example.
pub fn check_message(message: &str, strictness: Strictness) -> anyhow::Result<()> {
    let message = cleaned(message);
    let header = message.lines().next().unwrap_or_default();
    let wrong = |why: String| -> anyhow::Result<()> {
        bail!(
            "{why}\n  in: {header:?}\n  the form is `type(scope)!: subject`, e.g. `{EXAMPLE}`; types: {}",
            TYPES.join(", ")
        )
    };
    if header.is_empty() {
        return wrong("the message is empty".into());
    }
    // What git writes itself: merges and reverts.
    if header.starts_with("Merge ") || (header.starts_with("Revert \"") && header.ends_with('"')) {
        return Ok(());
    }
    if ["fixup! ", "squash! ", "amend! "].iter().any(|p| header.starts_with(p)) {
        return match strictness {
            Strictness::Local => Ok(()),
            Strictness::PullRequest => wrong("a fixup/squash commit: squash it before merging".into()),
        };
    }
    if header.chars().count() > MAX_HEADER {
        return wrong(format!("the first line has {} characters; at most {MAX_HEADER}", header.chars().count()));
    }
    let commit = match git_conventional::Commit::parse(&message) {
        Ok(c) => c,
        Err(e) => return wrong(format!("not a Conventional Commit: {e}")),
    };
    let ty = commit.type_().as_str().to_owned();
    if !TYPES.contains(&ty.to_lowercase().as_str()) {
        return wrong(format!("`{ty}` is not a commit type"));
    }
    if ty.chars().any(|c| c.is_uppercase()) {
        return wrong(format!("the type `{ty}` is written in lower case"));
    }
    let subject = commit.description();
    if subject.trim().chars().count() < MIN_SUBJECT {
        return wrong(format!("the subject {subject:?} is too short (at least {MIN_SUBJECT} characters)"));
    }
    if subject.ends_with('.') {
        return wrong("the subject ends with a period".into());
    }
    if !header.split_once(':').is_some_and(|(_, rest)| rest.starts_with(' ') && !rest.starts_with("  ")) {
        return wrong("one space after the colon".into());
    }
    if let Some(scope) = commit.scope()
        && scope.as_str().chars().any(|c| c.is_uppercase() || c.is_whitespace())
    {
        return wrong(format!("the scope `{}` is lower case without spaces", scope.as_str()));
    }
    let signoffs: Vec<&str> = message.lines().filter(|l| l.starts_with("Signed-off-by:")).collect();
    for (i, s) in signoffs.iter().enumerate() {
        if signoffs[..i].contains(s) {
            bail!("the message has `{s}` twice: keep one");
        }
    }
    Ok(())
}

/// The `commit-msg` hook: checks the message, then adds the committer's Signed-off-by when
/// missing (merges and reverts too).
fn commit_msg(root: &Path, file: &Path) -> anyhow::Result<()> {
    let file = if file.is_absolute() { file.to_path_buf() } else { std::env::current_dir()?.join(file) };
    let message = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    check_message(&message, Strictness::Local)?;
    let name = git(root, &["config", "user.name"]).context("git config user.name (needed for Signed-off-by)")?;
    let email = git(root, &["config", "user.email"]).context("git config user.email (needed for Signed-off-by)")?;
    let signoff = format!("Signed-off-by: {} <{}>", name.trim(), email.trim());
    if cleaned(&message).lines().any(|l| l == signoff) {
        return Ok(());
    }
    // git's own trailer logic: after the body, beside other trailers.
    let path = file.to_str().context("non-UTF-8 message path")?;
    git(root, &["interpret-trailers", "--in-place", "--trailer", &signoff, path])?;
    Ok(())
}

/// The remote refs of the lines git gives `pre-push` on stdin, deletions left out.
fn pushed_refs(stdin: &str) -> impl Iterator<Item = &str> {
    stdin.lines().filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // `<local ref> <local sha> <remote ref> <remote sha>`; a deletion pushes the zero sha.
        (f.len() == 4 && !f[1].chars().all(|c| c == '0')).then_some(f[2])
    })
}

/// A pushed ref: a branch with an allowed name, or a `vX.Y.Z` tag.
pub fn check_ref(r: &str) -> Result<(), String> {
    if let Some(branch) = r.strip_prefix("refs/heads/") {
        return check_branch(branch);
    }
    if let Some(tag) = r.strip_prefix("refs/tags/") {
        let ok = tag.strip_prefix('v').is_some_and(|v| semver::Version::parse(v).is_ok_and(|v| v.build.is_empty()));
        return if ok {
            Ok(())
        } else {
            Err(format!("tag `{tag}`: release tags are vX.Y.Z or vX.Y.Z-pre (e.g. v1.2.3)"))
        };
    }
    Ok(())
}

/// Branch names: `main`, `release-vX.Y`, or `<kind>/<words>` with a commit type (or `hotfix`,
/// `dependabot`, `renovate`) as kind and lower-case words joined by `-`, `.`, `_` or `/`.
pub fn check_branch(branch: &str) -> Result<(), String> {
    if branch == "main" {
        return Ok(());
    }
    if let Some(line) = branch.strip_prefix("release-v") {
        let parts: Vec<&str> = line.split('.').collect();
        let number =
            |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (*p == "0" || !p.starts_with('0'));
        if parts.len() == 2 && parts.iter().all(number) {
            return Ok(());
        }
        return Err(format!("branch `{branch}`: a release branch is release-vX.Y (e.g. release-v1.2)"));
    }
    let kinds: Vec<&str> = TYPES.iter().copied().chain(["hotfix", "dependabot", "renovate"]).collect();
    let wrong = || {
        Err(format!(
            "branch `{branch}`: use main, release-vX.Y or <kind>/<name> with kind one of {} and a lower-case name \
             (e.g. feat/group-read-receipts)",
            kinds.join(", ")
        ))
    };
    let Some((kind, name)) = branch.split_once('/') else { return wrong() };
    let name_ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._/".contains(c))
        && !name.starts_with(['-', '.', '/'])
        && !name.ends_with(['-', '.', '/']);
    if kinds.contains(&kind) && name_ok { Ok(()) } else { wrong() }
}

/// A staged file: its path and its content as staged.
struct Staged {
    path: String,
    size: u64,
}

fn staged(root: &Path) -> anyhow::Result<Vec<Staged>> {
    let names = git(root, &["diff", "--cached", "--name-only", "--diff-filter=ACMR", "-z"])?;
    let mut out = Vec::new();
    for path in names.split('\0').filter(|p| !p.is_empty()) {
        let size = git(root, &["cat-file", "-s", &format!(":{path}")])?.trim().parse()?;
        out.push(Staged { path: path.to_owned(), size });
    }
    Ok(out)
}

fn staged_bytes(root: &Path, path: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git").current_dir(root).args(["show", &format!(":{path}")]).output()?;
    if !out.status.success() {
        bail!("git show :{path}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// The problems of the staged files, one line each (empty: commit).
fn pre_commit(root: &Path, max_bytes: u64) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for f in staged(root)? {
        if f.size > max_bytes {
            problems
                .push(format!("{}: {} bytes, over the limit of {max_bytes} (OPENIM_HOOK_MAX_BYTES)", f.path, f.size));
            continue;
        }
        let data = staged_bytes(root, &f.path)?;
        if let Some(what) = secret_in(&data) {
            problems.push(format!("{}: looks like {what}; keep secrets out of the repository", f.path));
        }
        if f.path.ends_with(".rs") && !formatted(root, &data)? {
            problems.push(format!("{}: not formatted (cargo fmt)", f.path));
        }
    }
    Ok(problems)
}

/// Whether rustfmt (with the project's rustfmt.toml) leaves `source` as it is.
fn formatted(root: &Path, source: &[u8]) -> anyhow::Result<bool> {
    // `--check` exits 0 on standard input: compare what it writes instead.
    let mut cmd = Command::new("rustfmt");
    cmd.args(["--edition", "2024", "--emit", "stdout"]);
    if root.join("rustfmt.toml").is_file() {
        cmd.arg("--config-path").arg(root.join("rustfmt.toml"));
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("run rustfmt")?;
    let mut stdin = child.stdin.take().context("rustfmt's stdin")?;
    let input = source.to_vec();
    // Written from another thread: rustfmt may write before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("writing to rustfmt panicked"))??;
    // Source rustfmt cannot parse is not this hook's to judge: the compiler will say.
    Ok(!out.status.success() || out.stdout == source)
}

/// What secret `data` seems to hold, if any: private keys, and the token formats of the
/// registries and forges this project pushes to.
pub fn secret_in(data: &[u8]) -> Option<&'static str> {
    static PATTERNS: std::sync::LazyLock<Vec<(&'static str, regex::bytes::Regex)>> = std::sync::LazyLock::new(|| {
        [
            ("a private key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
            ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"),
            ("a Docker Hub access token", r"\bdckr_pat_[A-Za-z0-9_-]{20,}"),
            ("an Alibaba Cloud access key", r"\bLTAI[A-Za-z0-9]{12,24}\b"),
            ("an AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ]
        .into_iter()
        .map(|(what, re)| (what, regex::bytes::Regex::new(re).expect("a valid pattern")))
        .collect()
    });
    PATTERNS.iter().find(|(_, re)| re.is_match(data)).map(|(what, _)| *what)
}

#[cfg(test)]
mod tests;
