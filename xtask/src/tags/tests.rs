use super::*;

const DEFAULT_SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

#[derive(serde::Deserialize)]
struct Golden {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    #[serde(default = "push_event")]
    event: Event,
    #[serde(rename = "ref")]
    git_ref: String,
    sha: Option<String>,
    #[serde(default)]
    repo_tags: Vec<String>,
    tags: Vec<String>,
    push: Option<bool>,
}

fn push_event() -> Event {
    Event::Push
}

#[test]
fn golden_cases() {
    let golden: Golden = toml::from_str(include_str!("../../testdata/tags.toml")).expect("testdata/tags.toml parses");
    assert!(golden.case.len() >= 25, "at least 25 cases, have {}", golden.case.len());
    let mut failures = Vec::new();
    for c in &golden.case {
        let ctx = GitContext {
            event: c.event,
            git_ref: c.git_ref.clone(),
            sha: c.sha.clone().unwrap_or_else(|| DEFAULT_SHA.into()),
            repo_tags: c.repo_tags.clone(),
        };
        match compute(&ctx) {
            Ok(set) if set.tags == c.tags && set.push == c.push.unwrap_or(true) => {}
            Ok(set) => failures.push(format!("{}: got {:?} push={}, want {:?}", c.name, set.tags, set.push, c.tags)),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), golden.case.len(), failures.join("\n"));
}

#[test]
fn the_version_stamped_is_the_bare_semver_or_the_main_tag() {
    let ctx =
        |r: &str| GitContext { event: Event::Push, git_ref: r.into(), sha: DEFAULT_SHA.into(), repo_tags: vec![] };
    assert_eq!(compute(&ctx("refs/tags/v1.4.2+meta")).unwrap().version, "1.4.2");
    assert_eq!(compute(&ctx("refs/tags/v1.4.2-rc.3")).unwrap().version, "1.4.2-rc.3");
    assert_eq!(compute(&ctx("refs/heads/release-v1.4")).unwrap().version, "release-v1.4");
}

#[test]
fn bad_contexts_are_named() {
    let ctx =
        |r: &str, sha: &str| GitContext { event: Event::Push, git_ref: r.into(), sha: sha.into(), repo_tags: vec![] };
    let e = compute(&ctx("refs/remotes/origin/main", DEFAULT_SHA)).unwrap_err().to_string();
    assert!(e.contains("refs/remotes/origin/main"), "{e}");
    let e = compute(&ctx("refs/heads/main", "xyz")).unwrap_err().to_string();
    assert!(e.contains("xyz"), "{e}");
    assert!(Event::parse("issue_comment").unwrap_err().to_string().contains("issue_comment"));
}
