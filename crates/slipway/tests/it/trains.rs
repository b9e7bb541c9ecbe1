//! Release trains end to end, on a real git repository beside a real `slipway serve`: builds
//! of its commits are pushed and deployed to staging, `release cut` makes the candidate from
//! what staging runs (branch, range, changelog, draft notes), the notes are edited, and a
//! patch picks a commit of main onto production.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slipway_testkit::server::{CliOutput, SpawnedServer};

use crate::support::{BIN, FLEET_SCRIPT, json, wait_until};

const CONFIG: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"
pools = { web = { count = 1, traffic = true } }

[service.source]
repo = "idp"
#TRAIN#

[environment.staging]
target = "command"
bake = "0s"
confirm_scale_in = false
post_verify = false
[environment.staging.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"

[environment.prod]
target = "command"
approvals = false
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
provenance = "off"
[environment.prod.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"
"#;

/// Runs git in `dir`, isolated from the machine's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `file` in the repository and commits it; the new commit's sha.
fn commit(repo: &Path, file: &str, text: &str, message: &str) -> String {
    std::fs::write(repo.join(file), text).unwrap();
    git(repo, &["add", file]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A repository whose own config carries the identity the server's git writes with.
fn repository(root: &Path) -> std::path::PathBuf {
    let repo = root.join("idp");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for (key, value) in [
        ("user.name", "Release Bot"),
        ("user.email", "release@example.com"),
        ("commit.gpgSign", "false"),
        ("tag.gpgSign", "false"),
    ] {
        git(&repo, &["config", key, value]);
    }
    repo
}

fn setup(root: &Path, train: &str) -> SpawnedServer {
    std::fs::write(root.join("fleet.sh"), FLEET_SCRIPT).unwrap();
    std::fs::write(root.join("slipway.toml"), CONFIG.replace("#TRAIN#", train)).unwrap();
    SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    )
}

/// Pushes a build of `commit` as `version` of idp.
fn push(server: &SpawnedServer, token: &str, root: &Path, version: &str, commit: &str) {
    let file = root.join(format!("idp-{version}.tar.gz"));
    std::fs::write(&file, format!("build {version}")).unwrap();
    server
        .cli(
            token,
            &[
                "artifact",
                "push",
                file.to_str().unwrap(),
                "--service",
                "idp",
                "--version",
                version,
                "--commit",
                commit,
            ],
        )
        .success();
}

/// Deploys `release` of idp to `env` and follows it to success.
fn deploy(server: &SpawnedServer, token: &str, env: &str, release: &str) -> CliOutput {
    server
        .cli(
            token,
            &[
                "deploy",
                "idp",
                "--env",
                env,
                "--release",
                release,
                "--follow",
                "--timeout",
                "60s",
            ],
        )
        .success()
}

/// `slipway --output json ARGS…` as `token`, which must succeed: its answer.
fn cli_json(server: &SpawnedServer, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    json(&server.cli(token, &all).success().stdout)
}

fn refused(out: &CliOutput, expected: &[&str]) {
    assert_ne!(out.code(), 0, "accepted: {}", out.stdout);
    for text in expected {
        assert!(
            out.stderr.contains(text),
            "`{text}` missing in: {}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
}

#[test]
fn a_cut_takes_what_staging_runs_with_its_range_changelog_and_editable_notes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = repository(root);
    commit(&repo, "app.txt", "1", "Initial commit");
    commit(
        &repo,
        "login.txt",
        "new",
        "Add the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    let fixed = commit(
        &repo,
        "mail.txt",
        "ok",
        "fix(mail): send the reset email (#12)",
    );
    let server = setup(root, "");
    let admin = server.admin_token.clone();

    // Nothing runs in staging yet: nothing to cut from.
    refused(
        &server.cli(&admin, &["release", "cut", "idp"]),
        &["staging runs no release of idp", "slipway deploy idp"],
    );

    push(&server, &admin, root, "1.0.0", &fixed[..10]);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    deploy(&server, &admin, "staging", "1");

    let out = server
        .cli(&admin, &["--output", "json", "release", "cut", "idp"])
        .success();
    let cut = json(&out.stdout);
    // The server's day (UTC) of the cut, not this process's: they can differ across midnight.
    let day = &cut["release"]["created_at"].as_str().unwrap()[..10];
    let branch = format!("stages/rc-{day}");
    assert_eq!(cut["created"], true);
    assert_eq!(cut["kind"], "full");
    assert_eq!(cut["release"]["label"], "RC 2");
    assert_eq!(cut["release"]["kind"], "full");
    assert_eq!(cut["release"]["version"], "1.0.0");
    assert_eq!(cut["branch"], branch.as_str());
    // No production line yet: the release is the whole history up to staging's commit.
    assert_eq!(cut["range"], fixed.as_str());
    assert_eq!(cut["base"], serde_json::Value::Null);
    let changelog = cut["changelog"].as_str().unwrap();
    for expected in [
        "## User-Facing Improvements",
        "Show the new login page",
        "## Bug Fixes",
        "send the reset email (#12",
    ] {
        assert!(changelog.contains(expected), "{expected}: {changelog}");
    }
    assert_eq!(
        git(&repo, &["rev-parse", &format!("refs/heads/{branch}")]),
        fixed
    );

    // The same commit again: the same candidate, not RC 3.
    let again = server.cli(&admin, &["release", "cut", "idp"]).success();
    assert!(
        again.stdout.starts_with("already cut: idp RC 2 (full)"),
        "{}",
        again.stdout
    );
    let train = cli_json(&server, &admin, &["release", "list"]);
    assert_eq!(train["items"].as_array().unwrap().len(), 2);

    let shown = server
        .cli(&admin, &["release", "train", "idp", "RC 2"])
        .success();
    assert!(
        shown
            .stdout
            .starts_with(&format!("release: idp RC 2 (full) on branch {branch}")),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("Show the new login page"));
    refused(
        &server.cli(&admin, &["release", "train", "idp", "1"]),
        &["RC 1 was not cut by the train"],
    );

    // The draft notes, then an edit from stdin: a new revision.
    let notes = server
        .cli(&admin, &["release", "notes", "idp", "2"])
        .success();
    assert!(notes.stdout.starts_with("# idp RC 2"), "{}", notes.stdout);
    assert!(notes.stdout.contains("Show the new login page"));
    assert!(notes.stderr.contains("revision 1"), "{}", notes.stderr);
    let edited = server
        .cli_with_stdin(
            &admin,
            &["release", "notes", "idp", "RC 2", "--edit", "-"],
            Some("# idp RC 2\n\nA new login page.\n"),
        )
        .success();
    assert!(
        edited.stdout.contains("notes revision 2 saved (draft)"),
        "{}",
        edited.stdout
    );
    let shown = cli_json(&server, &admin, &["release", "notes", "idp", "2"]);
    assert_eq!(shown["body"], "# idp RC 2\n\nA new login page.\n");
    assert_eq!(shown["state"], "draft");
    refused(
        &server.cli(&admin, &["release", "notes", "idp", "1"]),
        &["RC 1 was not cut by the train"],
    );
    // An off-cycle cut needs a reason, and its notes announce it.
    let urgent = commit(&repo, "mail.txt", "fast", "fix: resend lost emails");
    push(&server, &admin, root, "1.0.1", &urgent);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.1"])
        .success();
    deploy(&server, &admin, "staging", "3");
    let no_reason = server.cli(&admin, &["release", "cut", "idp", "--off-cycle"]);
    assert_ne!(no_reason.code(), 0);
    assert!(
        no_reason.stderr.contains("--reason"),
        "{}",
        no_reason.stderr
    );
    // The day's branch holds RC 2: an abandoned one is removed as the hint says.
    refused(
        &server.cli(
            &admin,
            &[
                "release",
                "cut",
                "idp",
                "--off-cycle",
                "--reason",
                "lost emails",
            ],
        ),
        &["already exists at", "git branch -D"],
    );
    git(&repo, &["branch", "-D", &branch]);
    let off = cli_json(
        &server,
        &admin,
        &[
            "release",
            "cut",
            "idp",
            "--off-cycle",
            "--reason",
            "lost emails",
        ],
    );
    assert_eq!(off["release"]["label"], "RC 4");
    assert_eq!(off["release"]["kind"], "off-cycle");
    assert_eq!(off["release"]["reason"], "lost emails");
    let notes = server
        .cli(&admin, &["release", "notes", "idp", "4"])
        .success();
    assert!(
        notes.stdout.contains("**Off-cycle release**: lost emails"),
        "{}",
        notes.stdout
    );
    let audit = server.cli(&admin, &["audit", "export"]).success();
    assert!(
        audit.stdout.contains("release_train_cut"),
        "{}",
        audit.stdout
    );
    assert!(audit.stdout.contains("release_notes_edited"));
}

#[test]
fn a_cut_and_a_patch_group_their_changelog_in_the_service_s_configured_categories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = repository(root);
    commit(&repo, "app.txt", "1", "Initial commit");
    commit(
        &repo,
        "lock.txt",
        "5",
        "Lock accounts\n\nchangelog: Securty, Login, Lock accounts after five failed sign-ins",
    );
    let login = commit(
        &repo,
        "login.txt",
        "new",
        "Show the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    let server = setup(
        root,
        "\n[service.source.changelog]\ncategories = [\"Security\", \"Features\", \"Fixes\"]\n",
    );
    let admin = server.admin_token.clone();
    push(&server, &admin, root, "1.0.0", &login);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    deploy(&server, &admin, "staging", "1");

    let cut = cli_json(&server, &admin, &["release", "cut", "idp"]);
    assert_eq!(cut["release"]["label"], "RC 2");
    let changelog = cut["changelog"].as_str().unwrap();
    // The misspelling lands in the configured category it is close to; a category only the
    // defaults know is listed apart for a human.
    assert!(
        changelog.starts_with(
            "## Security\n\n### Login\n\n- Lock accounts after five failed sign-ins ("
        ),
        "{changelog}"
    );
    let apart = changelog
        .split_once("## Needs a category\n\n")
        .map(|(_, apart)| apart)
        .unwrap_or_else(|| panic!("nothing listed apart in:\n{changelog}"));
    assert!(
        apart.contains("Show the login page: unknown category \"User-Facing Improvements\""),
        "{changelog}"
    );
    assert!(
        !changelog.contains("## User-Facing Improvements"),
        "{changelog}"
    );
    // The draft notes are made of the same changelog.
    let notes = server
        .cli(&admin, &["release", "notes", "idp", "2"])
        .success();
    assert!(
        notes.stdout.contains("## Security\n\n### Login"),
        "{}",
        notes.stdout
    );

    // Production runs RC 2, so a patch goes onto its line; the patch's changelog uses the
    // same categories.
    deploy(&server, &admin, "prod", "2");
    wait_until(Duration::from_secs(30), "the production line", || {
        Command::new("git")
            .args(["rev-parse", "-q", "--verify", "refs/heads/stages/prod"])
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .is_ok_and(|out| out.status.success())
    });
    let fix = commit(
        &repo,
        "lock.txt",
        "5 per hour",
        "Unlock accounts\n\nchangelog: Fixs, Login, Unlock accounts after an hour",
    );
    let patch = cli_json(
        &server,
        &admin,
        &["release", "cut", "idp", "--patch", "--pick", &fix],
    );
    let changelog = patch["changelog"].as_str().unwrap();
    assert!(
        changelog.starts_with("## Fixes\n\n### Login\n\n- Unlock accounts after an hour ("),
        "{patch}"
    );
}

#[test]
fn a_cut_without_a_source_or_repository_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // `[service.source] repo = "idp"` names a directory that does not exist.
    let server = setup(root, "");
    let admin = server.admin_token.clone();
    refused(
        &server.cli(&admin, &["release", "cut", "idp"]),
        &["the repository of idp is not at", "clone the repository"],
    );
}

/// A local HTTP receiver for the notes webhook: keeps the head and body of every request it
/// gets, and answers each with the next status of its script (200 once that is used up).
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::answering(&[])
    }

    fn answering(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        let mut script: std::collections::VecDeque<u16> = script.iter().copied().collect();
        let thread = std::thread::spawn(move || {
            // Bounded: the test stops it, and it gives up after five minutes regardless.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let request = read_request(&mut stream);
                let status = script.pop_front().unwrap_or(200);
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                kept.lock().unwrap().push(request);
            }
        });
        Receiver {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| json(body))
            .collect()
    }

    /// The head (request line and headers) and body of request `n`.
    fn request(&self, n: usize) -> (String, String) {
        self.requests.lock().unwrap()[n].clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The value of header `name` in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The head and body of one request, by its Content-Length.
fn read_request(stream: &mut std::net::TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = header(&text[..end], "content-length")
                .and_then(|value| value.parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return (text[..end].to_owned(), text[end + 4..].to_owned());
            }
        }
    }
    (String::new(), String::new())
}

/// An SSH key without a passphrase, and the allowed-signers file that trusts it.
fn signing_key(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = root.join("tag_key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "release", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(root.join("tag_key.pub")).unwrap();
    let allowed = root.join("allowed_signers");
    std::fs::write(&allowed, format!("release@example.com {public}")).unwrap();
    (key, allowed)
}

#[test]
fn production_deploys_publish_signed_tags_and_notes_once_and_a_patch_then_a_true_up_follow() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = repository(root);
    commit(&repo, "app.txt", "1", "Initial commit");
    let login = commit(
        &repo,
        "login.txt",
        "new",
        "Add the login page\n\nchangelog: User-Facing Improvements, Login, Show the new login page",
    );
    let hook = Receiver::start();
    signing_key(root);
    let (_, allowed) = (root.join("tag_key"), root.join("allowed_signers"));
    let train = format!(
        "signing_key = \"tag_key\"\nnotes_webhook = \"http://{}/notes/s3cr3t\"",
        hook.addr
    );
    let server = setup(root, &train);
    let admin = server.admin_token.clone();

    push(&server, &admin, root, "1.0.0", &login);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    deploy(&server, &admin, "staging", "1");
    let cut = cli_json(&server, &admin, &["release", "cut", "idp"]);
    assert_eq!(cut["release"]["label"], "RC 2");
    server
        .cli_with_stdin(
            &admin,
            &["release", "notes", "idp", "2", "--edit", "-"],
            Some("RC 2 brings the login page.\n"),
        )
        .success();

    // A production deploy of a release the train did not make publishes nothing.
    deploy(&server, &admin, "prod", "1");
    // The production deploy of RC 2: tagged, signed, production moved, notes published once.
    deploy(&server, &admin, "prod", "2");
    wait_until(Duration::from_secs(30), "the published notes", || {
        !hook.bodies().is_empty()
    });
    let sent = hook.bodies();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["release"], "RC 2");
    assert_eq!(sent[0]["kind"], "full");
    assert_eq!(sent[0]["off_cycle"], false);
    assert_eq!(sent[0]["tag"], "RC-2");
    assert_eq!(sent[0]["signed"], true);
    assert_eq!(sent[0]["commit"], login.as_str());
    assert_eq!(sent[0]["notes"], "RC 2 brings the login page.\n");
    git(
        &repo,
        &[
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            "tag",
            "-v",
            "RC-2",
        ],
    );
    assert_eq!(git(&repo, &["rev-parse", "RC-2^{commit}"]), login);
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/stages/prod"]), login);
    wait_until(Duration::from_secs(30), "the delivery to be noted", || {
        let notes = cli_json(&server, &admin, &["release", "notes", "idp", "2"]);
        notes["state"] == "published" && !notes["published"]["delivered_at"].is_null()
    });
    let refused_edit = server.cli_with_stdin(
        &admin,
        &["release", "notes", "idp", "2", "--edit", "-"],
        Some("too late\n"),
    );
    // Delivered: no second copy follows the first.
    assert_eq!(hook.bodies().len(), 1, "{:?}", hook.bodies());
    refused(&refused_edit, &["already published"]);
    // The webhook's secret path never reaches the log.
    assert!(!server.log().contains("s3cr3t"));

    // A patch: a commit not on main is refused; a fix on main is picked onto production.
    git(&repo, &["checkout", "-q", "-b", "side"]);
    let side = commit(&repo, "side.txt", "x", "Experiment");
    git(&repo, &["checkout", "-q", "main"]);
    refused(
        &server.cli(
            &admin,
            &["release", "cut", "idp", "--patch", "--pick", &side],
        ),
        &["is not on main", "merge the fix into main first"],
    );
    commit(&repo, "later.txt", "x", "feat: a later feature");
    let fix = commit(
        &repo,
        "login.txt",
        "fixed",
        "fix(login): keep the session (#20)",
    );
    let waiting = cli_json(
        &server,
        &admin,
        &["release", "cut", "idp", "--patch", "--pick", &fix],
    );
    let branch = cut["branch"].as_str().unwrap();
    assert_eq!(waiting["release"], serde_json::Value::Null);
    assert_eq!(waiting["branch"], format!("{branch}.1").as_str());
    let head = waiting["head"].as_str().unwrap().to_owned();
    assert!(waiting["next"].as_str().unwrap().contains("--version V"));
    assert!(
        git(&repo, &["log", "-1", "--format=%B", &head])
            .contains(&format!("(cherry picked from commit {fix})"))
    );
    assert_eq!(git(&repo, &["rev-parse", &format!("{head}^")]), login);
    assert_eq!(waiting["number"], "RC 2.1");
    // The same first call again: the same number, branch and head, nothing picked twice.
    let abbreviated = &fix[..10];
    let again = cli_json(
        &server,
        &admin,
        &["release", "cut", "idp", "--patch", "--pick", abbreviated],
    );
    assert_eq!(again["number"], "RC 2.1", "{again}");
    assert_eq!(again["branch"], waiting["branch"]);
    assert_eq!(again["head"], head.as_str());
    // Another patch while this one awaits its artifact (other picks, a commit on main) takes
    // the next number on its own branch, and is released first.
    let later = git(&repo, &["rev-parse", "main~1"]);
    let other = cli_json(
        &server,
        &admin,
        &["release", "cut", "idp", "--patch", "--pick", &later],
    );
    assert_eq!(other["number"], "RC 2.2", "{other}");
    assert_eq!(other["branch"], format!("{branch}.2").as_str());
    let other_head = other["head"].as_str().unwrap().to_owned();
    push(&server, &admin, root, "1.0.2", &other_head);
    let other_release = cli_json(
        &server,
        &admin,
        &[
            "release",
            "cut",
            "idp",
            "--patch",
            "--pick",
            &later,
            "--version",
            "1.0.2",
        ],
    );
    assert_eq!(
        other_release["release"]["label"], "RC 2.2",
        "{other_release}"
    );
    // A pick that does not apply onto production is refused and gives its number back.
    let tweak = commit(
        &repo,
        "later.txt",
        "tweaked",
        "fix: tweak the later feature",
    );
    refused(
        &server.cli(
            &admin,
            &["release", "cut", "idp", "--patch", "--pick", &tweak],
        ),
        &["does not apply cleanly"],
    );
    let both = server
        .cli(
            &admin,
            &[
                "release", "cut", "idp", "--patch", "--pick", &later, "--pick", &tweak,
            ],
        )
        .success()
        .stdout;
    assert!(both.contains("no release yet, RC 2.3 reserved"), "{both}");
    // An artifact of another commit is refused; the one built from the patch head is taken.
    push(&server, &admin, root, "1.0.1-wrong", &fix);
    refused(
        &server.cli(
            &admin,
            &[
                "release",
                "cut",
                "idp",
                "--patch",
                "--pick",
                &fix,
                "--version",
                "1.0.1-wrong",
            ],
        ),
        &["not from the patch branch's head"],
    );
    push(&server, &admin, root, "1.0.1", &head);
    let patched = cli_json(
        &server,
        &admin,
        &[
            "release",
            "cut",
            "idp",
            "--patch",
            "--pick",
            &fix,
            "--version",
            "1.0.1",
        ],
    );
    assert_eq!(patched["release"]["label"], "RC 2.1");
    assert_eq!(patched["release"]["kind"], "patch");
    assert_eq!(patched["range"], format!("{login}..{head}").as_str());
    assert!(
        patched["changelog"]
            .as_str()
            .unwrap()
            .contains("keep the session"),
        "{patched}"
    );
    deploy(&server, &admin, "prod", "2.1");
    wait_until(Duration::from_secs(30), "the patch's notes", || {
        hook.bodies().len() == 2
    });
    assert_eq!(hook.bodies()[1]["release"], "RC 2.1");
    assert_eq!(git(&repo, &["rev-parse", "RC-2.1^{commit}"]), head);
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/stages/prod"]), head);

    // Staging runs the patch: a cut returns RC 2.1 itself and opens no new branch for it.
    deploy(&server, &admin, "staging", "2.1");
    let branches = git(&repo, &["branch", "--list", "stages/rc-*"]);
    let again = cli_json(&server, &admin, &["release", "cut", "idp"]);
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(again["release"]["label"], "RC 2.1", "{again}");
    assert_eq!(git(&repo, &["branch", "--list", "stages/rc-*"]), branches);

    // The next full release after the patch records the true-up merge of production.
    let main = git(&repo, &["rev-parse", "main"]);
    push(&server, &admin, root, "1.1.0", &main);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.1.0"])
        .success();
    deploy(&server, &admin, "staging", "3");
    // Trains run weekly; this one runs again the same day, so the day's branch is removed
    // first, as the refusal's hint says.
    git(&repo, &["branch", "-D", branch]);
    let next = cli_json(&server, &admin, &["release", "cut", "idp"]);
    assert_eq!(next["release"]["label"], "RC 4");
    assert_eq!(next["range"], format!("{head}..{main}").as_str());
    let merge = next["true_up"]
        .as_str()
        .expect("a true-up merge")
        .to_owned();
    assert_eq!(next["branch_head"], merge.as_str());
    assert_eq!(git(&repo, &["rev-parse", &format!("{merge}^2")]), head);
    assert_eq!(
        git(&repo, &["rev-parse", &format!("{merge}^{{tree}}")]),
        git(&repo, &["rev-parse", &format!("{main}^{{tree}}")])
    );
    // Only the train's own releases were published: RC 1 in production published nothing.
    assert_eq!(hook.bodies().len(), 2);
}

#[test]
fn a_cut_overtaken_by_a_patch_is_trued_up_when_it_ships_and_its_notes_are_delivered_until_taken() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = repository(root);
    commit(&repo, "app.txt", "1", "Initial commit");
    let first = commit(&repo, "login.txt", "new", "feat: the login page");
    // RC 2's notes: refused once with a 503, taken on the retry; RC 2.1's: refused for good
    // (404) until `release publish`; RC 4's: taken at once.
    let hook = Receiver::answering(&[503, 200, 404]);
    std::fs::write(root.join("notes.secret"), "n0tes-key\n").unwrap();
    let train = format!(
        "notes_webhook = \"http://{}/notes\"\nnotes_secret_file = \"notes.secret\"",
        hook.addr
    );
    let server = setup(root, &train);
    let admin = server.admin_token.clone();

    push(&server, &admin, root, "1.0.0", &first);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    deploy(&server, &admin, "staging", "1");
    let cut = server.cli(&admin, &["release", "cut", "idp"]).success();
    assert!(cut.stdout.starts_with("cut: idp RC 2"), "{}", cut.stdout);
    // Publishing by hand needs the release in production.
    refused(
        &server.cli(&admin, &["release", "publish", "idp", "2"]),
        &[
            "prod does not run idp RC 2",
            "slipway deploy idp --env prod --release 2",
        ],
    );
    refused(
        &server.cli(&admin, &["release", "publish", "idp", "1"]),
        &["RC 1 was not cut by the train"],
    );
    deploy(&server, &admin, "prod", "2");
    // The first delivery is refused with a 503; the deliverer tries again and it is taken.
    wait_until(Duration::from_secs(30), "RC 2's notes delivered", || {
        let notes = cli_json(&server, &admin, &["release", "notes", "idp", "2"]);
        notes["published"]["delivery"] == "delivered"
    });
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1]["release"], "RC 2");
    // Signed with the notes secret over timestamp.body, the same delivery id both times.
    let (head, body) = hook.request(1);
    let timestamp: i64 = header(&head, "x-slipway-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        header(&head, "x-slipway-signature"),
        Some(
            slipway_notify::signature::sign_webhook(b"n0tes-key", timestamp, body.as_bytes())
                .as_str()
        )
    );
    assert_eq!(header(&head, "idempotency-key"), Some("notes/idp/RC 2"));
    assert_eq!(
        header(&hook.request(0).0, "x-slipway-delivery"),
        Some("notes/idp/RC 2")
    );
    assert_eq!(git(&repo, &["rev-parse", "refs/heads/stages/prod"]), first);

    // RC 4 is cut from staging while production still runs RC 2 (no true-up needed then).
    let feature = commit(&repo, "search.txt", "x", "feat: search");
    let fix = commit(&repo, "login.txt", "fixed", "fix(login): keep the session");
    push(&server, &admin, root, "1.1.0", &feature);
    server
        .cli(&admin, &["release", "create", "idp", "--version", "1.1.0"])
        .success();
    deploy(&server, &admin, "staging", "3");
    let branch = git(
        &repo,
        &[
            "branch",
            "--list",
            "--format=%(refname:short)",
            "stages/rc-*",
        ],
    );
    git(&repo, &["branch", "-D", branch.trim()]);
    let rc4 = cli_json(&server, &admin, &["release", "cut", "idp"]);
    assert_eq!(rc4["release"]["label"], "RC 4");
    assert_eq!(rc4["true_up"], serde_json::Value::Null);

    // Then a patch of RC 2 ships first: production moves to it.
    let patch = cli_json(
        &server,
        &admin,
        &["release", "cut", "idp", "--patch", "--pick", &fix],
    );
    let patch_head = patch["head"].as_str().unwrap().to_owned();
    push(&server, &admin, root, "1.0.1", &patch_head);
    server
        .cli(
            &admin,
            &[
                "release",
                "cut",
                "idp",
                "--patch",
                "--pick",
                &fix,
                "--version",
                "1.0.1",
            ],
        )
        .success();
    deploy(&server, &admin, "prod", "2.1");
    assert_eq!(
        git(&repo, &["rev-parse", "refs/heads/stages/prod"]),
        patch_head
    );
    // Its notes are refused for good (404): the delivery is given up, nothing is lost.
    wait_until(Duration::from_secs(30), "RC 2.1's delivery to fail", || {
        let notes = cli_json(&server, &admin, &["release", "notes", "idp", "2.1"]);
        notes["published"]["delivery"] == "failed"
    });
    // `release publish` makes it due again; the receiver takes it now.
    let again = server
        .cli(&admin, &["release", "publish", "idp", "2.1"])
        .success();
    assert!(
        again
            .stdout
            .contains("idp RC 2.1: notes revision 1 published"),
        "{}",
        again.stdout
    );
    wait_until(Duration::from_secs(30), "RC 2.1's notes delivered", || {
        let notes = cli_json(&server, &admin, &["release", "notes", "idp", "2.1"]);
        notes["published"]["delivery"] == "delivered"
    });
    assert_eq!(hook.bodies().len(), 4);
    assert_eq!(hook.bodies()[3]["release"], "RC 2.1");

    // RC 4 ships after the patch: its branch gets the true-up merge of production at
    // publication, so production fast-forwards to a commit with RC 4's tree.
    deploy(&server, &admin, "prod", "4");
    wait_until(Duration::from_secs(30), "RC 4's notes", || {
        hook.bodies().len() == 5
    });
    let merge = git(&repo, &["rev-parse", "refs/heads/stages/prod"]);
    assert_eq!(git(&repo, &["rev-parse", "RC-4^{commit}"]), merge);
    assert_eq!(git(&repo, &["rev-parse", &format!("{merge}^1")]), feature);
    assert_eq!(
        git(&repo, &["rev-parse", &format!("{merge}^2")]),
        patch_head
    );
    assert_eq!(
        git(&repo, &["rev-parse", &format!("{merge}^{{tree}}")]),
        git(&repo, &["rev-parse", &format!("{feature}^{{tree}}")])
    );
    assert_eq!(hook.bodies()[4]["commit"], merge.as_str());
    let shown = cli_json(&server, &admin, &["release", "train", "idp", "4"]);
    assert_eq!(shown["true_up"], merge.as_str());
    assert_eq!(shown["branch_head"], merge.as_str());
    // A published and delivered release sent again by hand sends nothing new.
    let done = server
        .cli(&admin, &["release", "publish", "idp", "4"])
        .success();
    assert!(
        done.stdout.contains("delivered to the notes webhook"),
        "{}",
        done.stdout
    );
    assert_eq!(hook.bodies().len(), 5);
    assert!(!server.log().contains("n0tes-key"));
}
