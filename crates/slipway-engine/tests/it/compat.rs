//! The `compat` preflight check on a real repository and a real store: it refuses a candidate
//! that breaks beside the live commit, passes one whose findings are acknowledged (listing the
//! reasons in its detail, for the audit trail), and passes with a note when there is nothing to
//! compare.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use slipway_core::config::{
    CompatConfig, CompatIgnore, Config, EnvironmentConfig, HealthCheck, Policy, Pool,
    ServiceConfig, SourceConfig,
};
use slipway_core::deploy::{Deploy, DeployId, DeployRequest, DeploySpec, ReleaseRef};
use slipway_core::plan::{Purpose, ReleaseKind};
use slipway_core::time::Time;
use slipway_engine::plugin::PreflightCheck;
use slipway_engine::preflight::compat::CompatCheck;
use slipway_store::{ArtifactRecord, Store};

const T0: Time = Time::from_millis(1_800_000_000_000);

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn commit(dir: &Path, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "change"]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository whose second commit renames a column the first one reads; the migration
/// carries `comment` above the rename.
fn repository(dir: &Path, comment: &str) -> (String, String) {
    git(dir, &["init", "-q", "-b", "main"]);
    let base = commit(
        dir,
        &[(
            "app/views/users/show.html.erb",
            "<p><%= @user.email %></p>\n",
        )],
    );
    let migration = format!(
        "class Rename < ActiveRecord::Migration[7.1]\n  def change\n{comment}    rename_column :users, :email, :mail\n  end\nend\n"
    );
    let head = commit(dir, &[("db/migrate/20260101000000_rename.rb", &migration)]);
    (base, head)
}

fn release(number: u32) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {number}"),
        version: format!("1.{number}.0"),
        artifact: format!("sha256:{number:064x}"),
        config: format!("config-{number}"),
        config_version: None,
    }
}

fn service(source: Option<SourceConfig>) -> ServiceConfig {
    ServiceConfig {
        name: "idp".to_owned(),
        start: "bin/server".to_owned(),
        migrate: None,
        health: HealthCheck::default(),
        pools: BTreeMap::from([(
            "web".to_owned(),
            Pool {
                count: 1,
                traffic: true,
            },
        )]),
        config: Default::default(),
        source,
    }
}

fn config(source: Option<SourceConfig>) -> Config {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[environment.prod]\n";
    let mut config = slipway_core::config::parse_config("slipway.toml", text).unwrap();
    config.services = vec![service(source)];
    config
}

fn deploy(commit: Option<String>) -> Deploy {
    let service = service(None);
    let environment = EnvironmentConfig {
        name: "prod".to_owned(),
        target: "local".to_owned(),
        regions: Vec::new(),
        policy: Policy::protected(),
        command: None,
    };
    let request = DeployRequest {
        service: &service,
        environment: &environment,
        kind: ReleaseKind::Full,
        release: release(12),
        previous: Some(release(11)),
        requested_by: "alice".to_owned(),
        reason: None,
    };
    let mut spec = DeploySpec::new(DeployId(1), request, T0);
    spec.commit = commit;
    Deploy {
        spec,
        progress: Default::default(),
    }
}

async fn push(store: &Store, version: &str, commit: &str) {
    let artifact = ArtifactRecord {
        id: 0,
        service: "idp".to_owned(),
        version: version.to_owned(),
        digest: format!("sha256:{:0>64}", version.replace('.', "")),
        size: 1,
        commit: Some(commit.to_owned()),
        pushed_by: "ci".to_owned(),
        pushed_at: T0,
    };
    store.record_artifact(&artifact).await.unwrap();
}

fn source(ignore: Vec<CompatIgnore>) -> SourceConfig {
    SourceConfig {
        repo: "repo".to_owned(),
        branch: "main".to_owned(),
        train: Default::default(),
        compat: CompatConfig { ignore },
    }
}

#[tokio::test]
async fn compat_refuses_a_candidate_that_breaks_beside_the_live_commit() {
    let test = slipway_testkit::store::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let (base, head) = repository(&repo, "");
    push(&test.store, "1.11.0", &base).await;
    let check = CompatCheck::new(
        test.store.clone(),
        &config(Some(source(vec![]))),
        dir.path(),
    );
    assert_eq!(check.name(), "compat");
    let refusal = check
        .check(&deploy(Some(head.clone())), T0)
        .await
        .unwrap_err();
    assert!(
        refusal.message.contains("[rails-rename-column]"),
        "{}",
        refusal.message
    );
    assert!(
        refusal
            .message
            .contains("db/migrate/20260101000000_rename.rb:3"),
        "{}",
        refusal.message
    );
    assert!(
        refusal.hint.contains("slipway:compat-ignore"),
        "{}",
        refusal.hint
    );
    assert!(refusal.overridable);
    test.close().await;
}

#[tokio::test]
async fn compat_passes_an_acknowledged_finding_and_lists_the_reason() {
    let test = slipway_testkit::store::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let comment = "    # slipway:compat-ignore rails-rename-column users are read through a view\n";
    let (base, head) = repository(&repo, comment);
    push(&test.store, "1.11.0", &base).await;
    push(&test.store, "1.12.0", &head).await;
    let check = CompatCheck::new(
        test.store.clone(),
        &config(Some(source(vec![]))),
        dir.path(),
    );
    // The candidate's commit comes from its artifact when the spec has none.
    let detail = check.check(&deploy(None), T0).await.unwrap();
    assert!(detail.contains("safe to run side by side"), "{detail}");
    assert!(
        detail.contains("rails-rename-column at db/migrate/20260101000000_rename.rb:4 acknowledged in code: users are read through a view"),
        "{detail}"
    );
    test.close().await;
}

#[tokio::test]
async fn compat_passes_with_a_note_when_there_is_nothing_to_compare() {
    let test = slipway_testkit::store::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let without_source = CompatCheck::new(test.store.clone(), &config(None), dir.path());
    let detail = without_source
        .check(&deploy(Some("abc".into())), T0)
        .await
        .unwrap();
    assert!(detail.contains("names no [service.source]"), "{detail}");

    let check = CompatCheck::new(
        test.store.clone(),
        &config(Some(source(vec![]))),
        dir.path(),
    );
    let detail = check.check(&deploy(Some("abc".into())), T0).await.unwrap();
    assert!(
        detail.contains("no source commit recorded for RC 11"),
        "{detail}"
    );

    let mut first = deploy(Some("abc".into()));
    first.spec.previous = None;
    let detail = check.check(&first, T0).await.unwrap();
    assert!(
        detail.contains("nothing of idp runs in prod yet"),
        "{detail}"
    );
    test.close().await;
}

#[tokio::test]
async fn compat_refuses_with_a_hint_when_the_live_commit_is_not_in_the_clone() {
    let test = slipway_testkit::store::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let (_, head) = repository(&repo, "");
    push(&test.store, "1.11.0", &"0".repeat(40)).await;
    let ignore = vec![CompatIgnore {
        rule: "*".to_owned(),
        path: "db/".to_owned(),
        reason: "irrelevant here".to_owned(),
    }];
    let check = CompatCheck::new(
        test.store.clone(),
        &config(Some(source(ignore))),
        dir.path(),
    );
    let refusal = check.check(&deploy(Some(head)), T0).await.unwrap_err();
    assert!(
        refusal.message.contains("cannot compare RC 11"),
        "{}",
        refusal.message
    );
    assert!(refusal.hint.contains("git fetch"), "{}", refusal.hint);
    test.close().await;
}

/// Invariant 8: a rollback needs no source control. Its compat check passes without reading a
/// repository, even when the configured clone is missing.
#[tokio::test]
async fn a_rollback_passes_compat_without_touching_the_repository() {
    let test = slipway_testkit::store::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let check = CompatCheck::new(
        test.store.clone(),
        &config(Some(source(Vec::new()))),
        dir.path(),
    );
    push(&test.store, "1.11.0", &"e".repeat(40)).await;
    let mut rollback = deploy(Some("f".repeat(40)));
    // The same deploy as a release refuses: the clone is not there.
    assert!(check.check(&rollback, T0).await.is_err());
    rollback.spec.purpose = Purpose::Rollback;
    let passed = check.check(&rollback, T0).await.unwrap();
    assert!(passed.contains("skipped"), "{passed}");
    test.close().await;
}
