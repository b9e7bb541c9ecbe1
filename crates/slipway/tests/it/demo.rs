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
fn demo_deploys_v1_and_v2_recycles_a_reviewed_config_its_checks_roll_back_v3_and_it_leaves_nothing_running()
 {
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
        "bob reviews the diff: + DEMO_GREETING = \"slipway\"",
        "bob reviews the diff: + PARTNER_API_KEY = <secret ",
        "bob approves config version 1",
        "is a `config` release of v2 (no migration)",
        "deploy 3: finished: succeeded",
        "answers {\"hello\":\"slipway\"",
        "bob approves deploy 4",
        "deploy 4: ROLLING BACK (failure): canary check failed: error_rate",
        "deploy 4: finished: rolled_back",
        "(limit <= 2.0%",
        "0 failed for any other reason",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert_eq!(processes_under(&work), Vec::<String>::new(), "{stdout}");
}

#[test]
fn interrupted_demo_stops_everything_it_started() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let mut child = Command::new(BIN)
        .args(["demo", "--dir", work.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("slipway demo starts");
    let (lines, seen) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Wait until v1's instances run, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) if line.contains("v1 serves at") => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("the demo never got v1 serving");
            }
        }
    }
    assert!(!processes_under(&work).is_empty(), "v1's instances run");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the interrupted demo did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "an interrupted demo reports it");
    assert_eq!(processes_under(&work), Vec::<String>::new());
}
