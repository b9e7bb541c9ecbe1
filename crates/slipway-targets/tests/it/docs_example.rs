//! The worked example of `docs/targets.md`, run as written, so the page stays true.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use slipway_engine::plugin::{FleetState, Target};
use slipway_targets::{CommandSettings, CommandTarget};

use crate::support::{environment, key, launch_request, release, scope};

const TARGETS_MD: &str = include_str!("../../../../docs/targets.md");

/// The first ```` ``` ```` block after the line that starts with `heading`.
fn block_after(heading: &str) -> String {
    let start = TARGETS_MD
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("docs/targets.md has no `{heading}`"));
    let rest = &TARGETS_MD[start..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

fn write_script(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn the_worked_example_of_the_docs_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("deploy/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["launch", "stop", "observe"] {
        write_script(&bin, name, &block_after(&format!("`deploy/bin/{name}`")));
    }
    // The example's stand-ins for a real fleet.
    write_script(
        &bin,
        "start-instance",
        "#!/bin/sh\necho \"instance of $1\"\n",
    );
    write_script(&bin, "stop-instance", "#!/bin/sh\ntrue\n");

    let table = block_after("with\n\n```toml");
    let table = table.trim_start_matches("[environment.staging.command]\n");
    let settings = CommandSettings {
        artifact_dir: dir.path().join("artifacts"),
        workdir: dir.path().to_owned(),
        data_dir: dir.path().join("data"),
        config: None,
    };
    let target = CommandTarget::new(&environment(table), settings).unwrap();
    let scope = scope(None);

    let request = launch_request(release(2));
    let first = target
        .launch(&key("launch"), &scope, &request)
        .await
        .unwrap();
    assert!(first.ends_with("\nRC 2: 3 instances"), "{first}");
    let again = target
        .launch(&key("launch"), &scope, &request)
        .await
        .unwrap();
    assert!(again.ends_with("\nalready done: 7/3/1/launch"), "{again}");

    let fleets = target.observe(&scope).await.unwrap().fleets;
    assert_eq!(
        fleets,
        [FleetState {
            release: "RC 2".to_owned(),
            desired: 3,
            running: 3,
            healthy: 3,
            endpoints: Vec::new(),
        }]
    );

    let stopped = target
        .stop(&key("stop"), &scope, &release(2))
        .await
        .unwrap();
    assert!(stopped.ends_with("\nstopped RC 2"), "{stopped}");
    let twice = target
        .stop(&key("stop"), &scope, &release(2))
        .await
        .unwrap();
    assert!(twice.ends_with("\nRC 2 is not running"), "{twice}");
    assert!(target.observe(&scope).await.unwrap().fleets.is_empty());
}
