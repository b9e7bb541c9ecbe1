//! `slipway demo` runs its whole story on real processes and leaves nothing behind.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

/// Processes whose command line names `dir` (the demo's instances run from under it).
fn processes_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cwd.to_string_lossy().starts_with(&needle) {
            found.push(format!(
                "{} in {}",
                entry.file_name().to_string_lossy(),
                cwd.display()
            ));
        }
    }
    found
}

#[test]
fn demo_deploys_v1_and_v2_rolls_back_v3_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let output = Command::new(BIN)
        .args(["demo", "--dir", work.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("slipway demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "deploy 1: finished: succeeded",
        "deploy 2: step 4 surge started",
        "the 50/50 state held; alice confirms scale-in of deploy 2",
        "deploy 2: finished: succeeded",
        "bob approves deploy 3",
        "alice rolls back deploy 3",
        "deploy 3: finished: rolled_back",
        "0 failed for any other reason",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert_eq!(processes_under(&work), Vec::<String>::new(), "{stdout}");
}
