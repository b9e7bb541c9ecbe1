//! Config versions end to end, through the real CLI and API of a spawned `slipway serve` with
//! the local target: values set, reviewed by a second engineer, delivered to real instances as
//! environment variables, rolled out without new code ("config recycle", no migration), and
//! brought back by a rollback with the release they ran with. The leak test then searches a
//! canary secret in everything slipway said, sent, logged or stored — it appears nowhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use slipway_testkit::server::{CliOutput, SpawnedServer};

use crate::support::{BIN, api_get, dashboard_cookie, dashboard_page, free_port, get, wait_until};

/// The service: answers `/up`, and anything else with what its environment holds — the plain
/// greeting, a hash of the secret (never the secret), and the pinned config version.
const APP: &str = r#"
import hashlib, http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        if self.path == "/up":
            body = "up\n"
        else:
            key = hashlib.sha256(os.environ.get("API_KEY", "").encode()).hexdigest()[:16]
            body = "greeting=%s key=%s config=%s\n" % (
                os.environ.get("GREETING", ""), key, os.environ.get("SLIPWAY_CONFIG_VERSION", ""))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// The secret no output may contain.
const CANARY: &str = "canary-secret-5b1e-do-not-print";

fn config(root: &Path, proxy_port: u16, hook: SocketAddr) -> String {
    format!(
        r#"
[server]
data_dir = "data"

[secrets]
key_file = "master.key"

[markers]
webhooks = ["http://{hook}/hook"]

[[notify]]
kind = "slack"
url = "http://{hook}/slack"
environments = ["prod"]

[[notify]]
kind = "webhook"
name = "audit"
url = "http://{hook}/notify"
secret_file = "notify.secret"

[[service]]
name = "idp"
start = "exec python3 app"
migrate = "echo ran >> {migrations}"
health = {{ path = "/up", interval = "200ms", timeout = "2s" }}
pools = {{ web = {{ count = 1, traffic = true }} }}

[service.config]
GREETING = {{ required = true, allowed = ["hello", "bonjour"] }}
API_KEY = {{ required = true, secret = true }}
QUEUE = {{ unique = "services" }}

[[service]]
name = "pivcac"
start = "exec python3 app"

[service.config]
JOBS_QUEUE = {{ unique = "services", group = "QUEUE" }}

[environment.prod]
protected = true
provenance = "off"
approvals = {{ required = 1, expires = "30m" }}
go_no_go = false
bake = "1s"
confirm_scale_in = false
post_verify = false
listen = {{ idp = "127.0.0.1:{proxy_port}", pivcac = "127.0.0.1:{pivcac_port}" }}
"#,
        migrations = root.join("migrations").display(),
        pivcac_port = free_port(),
    )
}

/// A local HTTP receiver for the webhook notifications: keeps every request it gets.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            // Bounded: the test stops it, and it gives up after ten minutes regardless.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        let request = read_request(&mut stream);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        kept.lock().unwrap().push(request);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Receiver {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
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

/// Headers and body of one request (the body by its Content-Length).
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// Everything the test saw, to search for the canary at the end.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn keep(&mut self, what: &str, text: &str) {
        self.0.push((what.to_owned(), text.to_owned()));
    }

    fn cli(&mut self, server: &SpawnedServer, token: &str, args: &[&str]) -> CliOutput {
        self.cli_with_stdin(server, token, args, None)
    }

    fn cli_with_stdin(
        &mut self,
        server: &SpawnedServer,
        token: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> CliOutput {
        let out = server.cli_with_stdin(token, args, input);
        self.keep(&format!("slipway {}", args.join(" ")), &out.stdout);
        self.keep(&format!("slipway {} (stderr)", args.join(" ")), &out.stderr);
        out
    }

    fn api(&mut self, server: &SpawnedServer, token: &str, path: &str) -> serde_json::Value {
        let answer = api_get(server, token, path);
        self.keep(&format!("GET {path}"), &answer.to_string());
        answer
    }
}

fn keygen(root: &Path, name: &str) -> PathBuf {
    let file = root.join(name);
    let out = Command::new(BIN)
        .args(["config", "keygen", "--out", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

fn user(server: &SpawnedServer, name: &str, role: &str) -> String {
    let admin = &server.admin_token;
    server
        .cli(admin, &["user", "add", name, "--role", role])
        .success();
    let out = server
        .cli(admin, &["token", "create", "--user", name])
        .success();
    out.stdout.trim().to_owned()
}

fn id_of(out: &CliOutput) -> String {
    let text = &out.stdout;
    text.split_whitespace()
        .skip_while(|word| *word != "deploy")
        .nth(1)
        .map(|id| id.trim_end_matches(':').to_owned())
        .unwrap_or_else(|| panic!("no deploy id in: {text}"))
}

/// Approves deploy `id` as bob and follows it to success.
fn approve_and_finish(seen: &mut Seen, server: &SpawnedServer, alice: &str, bob: &str, id: &str) {
    wait_until(Duration::from_secs(60), "the approval step", || {
        let deploy = api_get(server, alice, &format!("/api/v1/deploys/{id}"));
        assert_ne!(
            deploy["phase"]["state"],
            "finished",
            "{deploy}\n{}",
            server.log()
        );
        deploy["phase"]["waiting_for"] == "approval"
    });
    seen.cli(server, bob, &["approve", id]).success();
    let followed = seen.cli(
        server,
        alice,
        &["status", id, "--follow", "--timeout", "90s"],
    );
    assert_eq!(followed.code(), 0, "{}\n{}", followed.stdout, server.log());
}

/// What the service answers through slipway's proxy.
fn served(proxy: SocketAddr) -> String {
    let (status, body) = get(proxy).expect("the proxy answers");
    assert_eq!(status, 200, "{body}");
    body.trim().to_owned()
}

fn short_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))[..16].to_owned()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_secret_set_reviewed_deployed_recycled_and_rolled_back_appears_nowhere_but_in_the_instance() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    keygen(root, "master.key");
    std::fs::write(root.join("notify.secret"), "notify-signing-secret\n").unwrap();
    let hook = Receiver::start();
    let proxy_port = free_port();
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    std::fs::write(
        root.join("slipway.toml"),
        config(root, proxy_port, hook.addr),
    )
    .unwrap();
    let server = SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    );
    let (alice, bob) = (
        user(&server, "alice", "deployer"),
        user(&server, "bob", "approver"),
    );
    let mut seen = Seen::default();
    let env = ["--env", "prod"];

    // Set: the rules require both keys, so the greeting alone is refused; with the secret
    // (from stdin, never the command line) it is version 1, awaiting review.
    let alone = seen.cli(
        &server,
        &alice,
        &["config", "set", "idp", env[0], env[1], "GREETING=hello"],
    );
    assert_ne!(alone.code(), 0, "{}", alone.stdout);
    assert!(
        alone.stderr.contains("API_KEY is required"),
        "{}",
        alone.stderr
    );
    let set = seen
        .cli_with_stdin(
            &server,
            &alice,
            &[
                "config",
                "set",
                "idp",
                "--env",
                "prod",
                "GREETING=hello",
                "API_KEY",
                "-m",
                "vendor key",
            ],
            Some(CANARY),
        )
        .success();
    assert!(set.stdout.contains("awaits review"), "{}", set.stdout);
    let fingerprint = seen
        .cli_with_stdin(&server, &alice, &["config", "fingerprint"], Some(CANARY))
        .success()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(fingerprint.len(), 16, "{fingerprint}");

    // Review: the diff shows the secret by the fingerprint alice can confirm, not its value.
    let diff = seen
        .cli(&server, &bob, &["config", "diff", "idp", "--env", "prod"])
        .success();
    assert!(
        diff.stdout
            .contains(&format!("+ API_KEY = <secret {fingerprint}>")),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("+ GREETING = \"hello\""),
        "{}",
        diff.stdout
    );
    let own = seen.cli(
        &server,
        &alice,
        &[
            "config",
            "approve",
            "idp",
            "--env",
            "prod",
            "--version",
            "1",
        ],
    );
    assert_ne!(
        own.code(),
        0,
        "an author approved their own change: {}",
        own.stdout
    );
    assert!(own.stderr.contains("approver role"), "{}", own.stderr);

    // A deploy of an unreviewed version is refused before anything starts.
    let artifact = root.join("idp-1.py");
    std::fs::write(&artifact, APP).unwrap();
    let file = artifact.to_str().unwrap();
    seen.cli(
        &server,
        &alice,
        &[
            "artifact",
            "push",
            file,
            "--service",
            "idp",
            "--version",
            "1",
        ],
    )
    .success();
    seen.cli(
        &server,
        &alice,
        &["release", "create", "idp", "--version", "1"],
    )
    .success();
    let refused = seen.cli(&server, &alice, &["deploy", "idp", "--env", "prod"]);
    assert_ne!(refused.code(), 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("awaits review"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: "), "{}", refused.stderr);

    seen.cli(
        &server,
        &bob,
        &[
            "config",
            "approve",
            "idp",
            "--env",
            "prod",
            "--version",
            "1",
        ],
    )
    .success();
    let started = seen
        .cli(&server, &alice, &["deploy", "idp", "--env", "prod"])
        .success();
    let first = id_of(&started);
    approve_and_finish(&mut seen, &server, &alice, &bob, &first);
    assert_eq!(
        served(proxy),
        format!("greeting=hello key={} config=1", short_hash(CANARY))
    );

    // Config recycle: a new greeting, reviewed, rolled out with the same artifact; no migration.
    seen.cli(
        &server,
        &alice,
        &["config", "set", "idp", "--env", "prod", "GREETING=bonjour"],
    )
    .success();
    seen.cli(
        &server,
        &bob,
        &[
            "config",
            "approve",
            "idp",
            "--env",
            "prod",
            "--version",
            "2",
        ],
    )
    .success();
    let recycled = seen
        .cli(
            &server,
            &alice,
            &["config", "recycle", "idp", "--env", "prod"],
        )
        .success();
    let second = id_of(&recycled);
    assert!(!recycled.stdout.contains("migrate"), "{}", recycled.stdout);
    approve_and_finish(&mut seen, &server, &alice, &bob, &second);
    assert_eq!(
        served(proxy),
        format!("greeting=bonjour key={} config=2", short_hash(CANARY))
    );
    let migrations = std::fs::read_to_string(root.join("migrations")).unwrap();
    assert_eq!(
        migrations.lines().count(),
        1,
        "the recycle ran the migration again"
    );

    // Rollback: the release that ran before comes back with the config it ran with.
    let rolled = seen.cli(
        &server,
        &alice,
        &[
            "rollback",
            "idp",
            "--env",
            "prod",
            "--reason",
            "greeting",
            "--follow",
            "--timeout",
            "90s",
        ],
    );
    assert_eq!(
        rolled.code(),
        0,
        "{}\n{}\n{}",
        rolled.stdout,
        rolled.stderr,
        server.log()
    );
    assert_eq!(
        served(proxy),
        format!("greeting=hello key={} config=1", short_hash(CANARY))
    );

    // Everything the API shows about it.
    seen.cli(
        &server,
        &bob,
        &["config", "history", "idp", "--env", "prod"],
    )
    .success();
    seen.cli(&server, &bob, &["config", "get", "idp", "--env", "prod"])
        .success();
    seen.cli(
        &server,
        &bob,
        &["config", "export", "idp", "--env", "prod", "--version", "1"],
    )
    .success();
    let secret_get = seen
        .cli(
            &server,
            &bob,
            &["config", "get", "idp", "--env", "prod", "API_KEY"],
        )
        .success();
    assert_eq!(secret_get.stdout.trim(), format!("<secret {fingerprint}>"));
    for path in [
        "/api/v1/config/idp/prod",
        "/api/v1/config/idp/prod?version=1",
        "/api/v1/config/idp/prod/versions",
        "/api/v1/config/idp/prod/diff?from=1&to=2",
        "/api/v1/audit/events",
        "/api/v1/releases",
    ] {
        seen.api(&server, &bob, path);
    }
    let deploys = seen.api(&server, &bob, "/api/v1/deploys");
    for deploy in deploys["items"].as_array().unwrap() {
        let id = deploy["id"].as_i64().unwrap();
        seen.api(&server, &bob, &format!("/api/v1/deploys/{id}"));
        seen.api(
            &server,
            &bob,
            &format!("/api/v1/deploys/{id}/events?limit=1000"),
        );
    }
    // The dashboard's pages show what the API shows.
    let cookie = dashboard_cookie(&server, &bob);
    for path in [
        "/".to_owned(),
        "/config".to_owned(),
        "/approvals".to_owned(),
        "/audit".to_owned(),
        format!("/deploys/{first}"),
        format!("/deploys/{second}"),
    ] {
        let page = dashboard_page(&server, &cookie, &path);
        seen.keep(&format!("the dashboard's {path}"), &page);
    }
    seen.cli(&server, &bob, &["audit", "verify"]).success();
    seen.cli(&server, &bob, &["audit", "export"]).success();
    seen.cli(&server, &bob, &["receipt", &second]).success();
    wait_until(Duration::from_secs(30), "the webhook notifications", || {
        let requests = hook.requests();
        let to = |path: &str| {
            let line = format!("POST {path} ");
            requests.iter().filter(|r| r.starts_with(&line)).count()
        };
        to("/hook") >= 3 && to("/slack") >= 3 && to("/notify") >= 3
    });
    for request in hook.requests() {
        seen.keep(
            "a webhook notification (markers, Slack or signed)",
            &request,
        );
    }
    check_notifications(&hook.requests());
    seen.api(&server, &bob, "/api/v1/notifications?limit=1000");
    let listed = seen.cli(&server, &bob, &["notifications"]).success();
    assert!(listed.stdout.contains("delivered"), "{}", listed.stdout);
    seen.keep("the server's log", &server.log());

    // The search finds what is there: a control entry holding the canary is the only hit.
    seen.keep("control", CANARY);
    let mut leaks: Vec<String> = seen
        .0
        .iter()
        .filter(|(_, text)| text.contains(CANARY))
        .map(|(what, _)| what.clone())
        .collect();
    for file in files(&root.join("data")) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        if bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()) {
            leaks.push(file.display().to_string());
        }
    }
    assert_eq!(leaks, ["control"], "the secret leaked");
}

const RULES: &str = r##"
[server]
data_dir = "data"

[secrets]
key_file = "#KEY#"
#PREVIOUS#

[[service]]
name = "idp"
start = "exec python3 app"

[service.config]
QUEUE = { unique = "services" }
WORKERS = { type = "int" }

[[service]]
name = "pivcac"
start = "exec python3 app"

[service.config]
JOBS_QUEUE = { unique = "services", group = "QUEUE" }

[environment.staging]
"##;

fn write_rules(root: &Path, key: &str, previous: &[&str]) {
    let previous = if previous.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = previous.iter().map(|p| format!("{p:?}")).collect();
        format!("previous_key_files = [{}]", quoted.join(", "))
    };
    let config = RULES.replace("#KEY#", key).replace("#PREVIOUS#", &previous);
    std::fs::write(root.join("slipway.toml"), config).unwrap();
}

fn start_with_keys(root: &Path, key: &str, previous: &[&str]) -> SpawnedServer {
    write_rules(root, key, previous);
    SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    )
}

/// Runs `slipway serve` on `root`'s config, expecting it to refuse to start; its stderr.
fn serve_until_exit(root: &Path) -> String {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            root.join("slipway.toml").to_str().unwrap(),
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            root.join("data").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("slipway serve started with a key that cannot open its versions");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
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
fn config_rules_env_files_and_master_key_rotation_through_the_cli() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    keygen(root, "master.key");
    let mut server = start_with_keys(root, "master.key", &[]);
    let admin = server.admin_token.clone();
    let set = |server: &SpawnedServer, args: &[&str]| {
        let mut all = vec!["config", "set"];
        all.extend_from_slice(args);
        server.cli(&admin, &all)
    };

    // Rules at `config set`: a queue another service holds, a type, a reserved name.
    set(&server, &["idp", "--env", "staging", "QUEUE=jobs"]).success();
    refused(
        &set(&server, &["pivcac", "--env", "staging", "JOBS_QUEUE=jobs"]),
        &["idp", "staging", "QUEUE"],
    );
    set(
        &server,
        &["pivcac", "--env", "staging", "JOBS_QUEUE=jobs-pivcac"],
    )
    .success();
    refused(
        &set(&server, &["idp", "--env", "staging", "WORKERS=many"]),
        &["WORKERS"],
    );
    refused(
        &set(&server, &["idp", "--env", "staging", "PORT=8080"]),
        &["PORT"],
    );
    refused(
        &server.cli(
            &admin,
            &["config", "unset", "idp", "--env", "staging", "NOPE"],
        ),
        &["NOPE", "QUEUE"],
    );
    refused(
        &server.cli(
            &admin,
            &["config", "set", "nope", "--env", "staging", "A=1"],
        ),
        &["unknown service `nope`"],
    );

    // A secret's value never on the command line; a value typed where a key goes is not echoed.
    let on_line = set(&server, &["idp", "--env", "staging", "API_TOKEN=tok-123"]);
    refused(&on_line, &["API_TOKEN", "command line"]);
    assert!(!on_line.stderr.contains("tok-123"), "{}", on_line.stderr);
    let stray = set(&server, &["idp", "--env", "staging", "p@ss word"]);
    refused(&stray, &["argument 1"]);
    assert!(!stray.stderr.contains("p@ss"), "{}", stray.stderr);

    // Nobody approves their own change, whatever their role.
    refused(
        &server.cli(
            &admin,
            &[
                "config",
                "approve",
                "idp",
                "--env",
                "staging",
                "--version",
                "1",
            ],
        ),
        &["another engineer"],
    );

    // An env file in; plain values come back out, the secret only as a comment.
    let secret = "env-file-secret-9d1c";
    std::fs::write(
        root.join("idp.env"),
        format!(
            "# from the old box\nWORKERS=4\nexport GREETING=\"two words\"\nDB_PASSWORD={secret}\n"
        ),
    )
    .unwrap();
    let imported = server
        .cli(
            &admin,
            &[
                "config",
                "import",
                "idp",
                "--env",
                "staging",
                root.join("idp.env").to_str().unwrap(),
            ],
        )
        .success();
    assert!(
        imported.stdout.contains("+ DB_PASSWORD = <secret "),
        "{}",
        imported.stdout
    );
    let exported = server
        .cli(&admin, &["config", "export", "idp", "--env", "staging"])
        .success()
        .stdout;
    assert!(exported.contains("GREETING=\"two words\""), "{exported}");
    assert!(exported.contains("WORKERS=4"), "{exported}");
    assert!(exported.contains("QUEUE=jobs"), "{exported}");
    assert!(exported.contains("# DB_PASSWORD"), "{exported}");
    assert!(!exported.contains(secret), "{exported}");
    let history = server
        .cli(&admin, &["config", "history", "idp", "--env", "staging"])
        .success()
        .stdout;
    assert!(
        history.contains("DB_PASSWORD, GREETING, WORKERS"),
        "{history}"
    );
    let before = server
        .cli(
            &admin,
            &["config", "get", "idp", "--env", "staging", "DB_PASSWORD"],
        )
        .success()
        .stdout;

    // Rotation: a new key, the old one still readable, then every data key re-wrapped.
    server.terminate(Duration::from_secs(20));
    keygen(root, "master-2.key");
    // Only the new key: the server refuses to start rather than run with unreadable versions.
    write_rules(root, "master-2.key", &[]);
    let refused_start = serve_until_exit(root);
    assert!(
        refused_start.contains("not configured") && refused_start.contains("previous_key_files"),
        "{refused_start}"
    );
    let mut server = start_with_keys(root, "master-2.key", &["master.key"]);
    let rotated = server.cli(&admin, &["config", "rotate-key"]).success();
    assert!(rotated.stdout.contains("re-wrapped"), "{}", rotated.stdout);
    server.terminate(Duration::from_secs(20));
    let mut server = start_with_keys(root, "master-2.key", &[]);
    let after = server
        .cli(
            &admin,
            &["config", "get", "idp", "--env", "staging", "DB_PASSWORD"],
        )
        .success()
        .stdout;
    assert_eq!(after, before, "the fingerprint changed with the master key");
    set(&server, &["idp", "--env", "staging", "WORKERS=5"]).success();
    server.terminate(Duration::from_secs(20));
}

/// The Slack messages name the environment first in capitals; every signed webhook verifies
/// with the secret in `notify.secret`.
fn check_notifications(requests: &[String]) {
    let slack: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("POST /slack "))
        .collect();
    assert!(
        slack
            .iter()
            .any(|r| r.contains(r#""text":"PROD: idp RC 1 deploy started by alice""#)),
        "{slack:#?}"
    );
    for request in requests.iter().filter(|r| r.starts_with("POST /notify ")) {
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        let header = |name: &str| {
            head.lines()
                .find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default()
        };
        assert!(
            slipway_notify::signature::verify_webhook(
                b"notify-signing-secret",
                &header("x-slipway-timestamp"),
                body.as_bytes(),
                &header("x-slipway-signature"),
            ),
            "{request}"
        );
    }
}
