//! The GitHub workflows: they pass actionlint and zizmor (offline), and every step that runs
//! project logic does it through `cargo xtask` (or `.ci/`), so it can run on a laptop too.

use std::path::PathBuf;
use std::process::Command;

fn workflows() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
}

/// What a `run:` line may start with: project logic through `cargo xtask` or `.ci/`, the load
/// generator's message check, and plumbing with no logic of ours (the GitHub CLI, tearing down a
/// compose project).
fn allowed(line: &str) -> bool {
    static ALLOWED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"^(?:[A-Z_]+=\S+ )*(?:cargo (?:--quiet )?xtask |bash \.ci/|cargo run --release -p openim-bench -- |gh release |docker compose .* down\b)"#,
        )
        .unwrap()
    });
    ALLOWED.is_match(line)
}

/// The commands of a `run:` script: continuation lines joined, comments and blank lines left out.
fn commands(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

#[test]
fn every_step_that_runs_project_logic_calls_cargo_xtask() {
    let mut runs = 0;
    for file in workflows() {
        let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for (job, spec) in doc["jobs"].as_mapping().unwrap() {
            for step in spec["steps"].as_sequence().into_iter().flatten() {
                let Some(script) = step["run"].as_str() else { continue };
                for command in commands(script) {
                    runs += 1;
                    assert!(
                        allowed(&command),
                        "{}: job {}: `{command}` runs project logic outside `cargo xtask`",
                        file.display(),
                        job.as_str().unwrap()
                    );
                }
            }
        }
    }
    assert!(runs >= 10, "{runs} commands seen");
    // The rule itself: a direct test or build command is not allowed.
    for bad in ["cargo nextest run -p openim-storage", "cargo build --release", "./scripts/release.sh", "helm push x"] {
        assert!(!allowed(bad), "{bad}");
    }
    assert!(allowed(r#"CARGO_TARGET_DIR="$HOME/.cache/openim-target" cargo xtask release $DRY_RUN"#));
}

#[test]
fn every_action_is_pinned_to_a_full_commit_sha() {
    for file in workflows() {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in
            text.lines().filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
        {
            let action = line.split("uses:").nth(1).unwrap().split('#').next().unwrap().trim();
            let (_, rev) = action.split_once('@').unwrap_or_else(|| panic!("{}: {action} has no ref", file.display()));
            assert!(
                rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
                "{}: {action} is not pinned to a commit",
                file.display()
            );
        }
    }
}

/// actionlint and zizmor (offline: no GitHub API), as `cargo xtask setup lint` installs them.
#[test]
fn the_workflows_pass_actionlint_and_zizmor() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for (tool, args) in
        [("actionlint", &["-no-color"][..]), ("zizmor", &["--offline", "--no-progress", ".github/workflows"][..])]
    {
        let (bin, path) = crate::build::find_tool(tool, "cargo xtask setup lint").unwrap();
        let out = Command::new(bin).args(args).current_dir(&root).env("PATH", path).output().unwrap();
        assert!(
            out.status.success(),
            "{tool}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
