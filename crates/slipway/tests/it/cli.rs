//! The CLI's own behaviour: errors with hints, `init`, `completions`, and `serve` refusing to
//! start on bad input.

use std::path::Path;
use std::process::{Command, Stdio};

use slipway_testkit::server::SpawnedServer;

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

fn slipway(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SLIPWAY_TOKEN")
        .env_remove("SLIPWAY_SERVER")
        .env_remove("SLIPWAY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("slipway runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unreachable_server_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let output = slipway(&["--server", "http://127.0.0.1:1", "deploys"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: cannot reach the slipway server at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  hint: start it with `slipway serve`"),
        "{stderr}"
    );
}

#[test]
fn init_writes_a_config_that_check_config_accepts_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let output = slipway(&["init"], dir.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let checked = slipway(&["check-config"], dir.path());
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    assert!(
        text(&checked.stdout).contains("1 service, 2 environments"),
        "{}",
        text(&checked.stdout)
    );

    std::fs::write(dir.path().join("slipway.toml"), "# mine\n").unwrap();
    let again = slipway(&["init"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("hint: pass --force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("slipway.toml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn completions_are_printed_for_bash() {
    let dir = tempfile::tempdir().unwrap();
    let output = slipway(&["completions", "bash"], dir.path());
    assert!(output.status.success());
    let script = text(&output.stdout);
    assert!(
        script.contains("_slipway()") && script.contains("rollback"),
        "{script}"
    );
}

#[test]
fn serve_refuses_an_invalid_config_and_names_every_mistake() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slipway.toml"),
        "[[service]]\nname = \"idp\"\n\n[environment.prod]\nbak = \"15m\"\n",
    )
    .unwrap();
    let output = slipway(&["serve", "--listen", "127.0.0.1:0"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("slipway.toml is not valid"), "{stderr}");
    assert!(stderr.contains("did you mean `bake`?"), "{stderr}");
    assert!(
        stderr.contains("hint: fix it and check with `slipway check-config"),
        "{stderr}"
    );
    assert!(
        !dir.path().join(".slipway").exists(),
        "nothing is created for a bad config"
    );
}

#[test]
fn failures_without_a_token_or_with_a_taken_port_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slipway.toml");
    std::fs::write(
        &config,
        "[[service]]\nname = \"idp\"\nstart = \"x\"\n\n[environment.dev]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = SpawnedServer::start(Path::new(BIN), &config, &data);

    let anonymous = server.cli("", &["deploys"]);
    assert_eq!(anonymous.code(), 1);
    assert!(
        anonymous
            .stderr
            .starts_with("error: this request carries no token"),
        "{}",
        anonymous.stderr
    );
    assert!(
        anonymous.stderr.contains("admin-token"),
        "{}",
        anonymous.stderr
    );

    let json = server.cli("slw_nonsense", &["--output", "json", "status"]);
    assert_eq!(json.code(), 1);
    let body: serde_json::Value = serde_json::from_str(&json.stdout).expect("the error shape");
    assert_eq!(body["error"]["code"], "invalid_token");

    let unknown = server.cli(&server.admin_token, &["deploy", "ipd", "--env", "dev"]);
    assert_eq!(unknown.code(), 1);
    assert!(
        unknown.stderr.contains("hint: did you mean `idp`?"),
        "{}",
        unknown.stderr
    );

    // A second server cannot take the first one's port.
    let port = server.url.rsplit(':').next().unwrap();
    let taken = slipway(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        dir.path(),
    );
    assert_eq!(taken.status.code(), Some(1));
    let stderr = text(&taken.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint: choose another address"), "{stderr}");
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slipway.toml");
    std::fs::write(
        &config,
        "[[service]]\nname = \"idp\"\nstart = \"x\"\n\n[environment.dev]\n",
    )
    .unwrap();
    let mut server = SpawnedServer::start(Path::new(BIN), &config, &dir.path().join("data"));
    let address = server.url.trim_start_matches("http://").to_owned();

    // Half an artifact upload is on the wire when the server is told to stop.
    let body = vec![b'x'; 64 * 1024];
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/artifacts?service=idp&version=1.0.0 HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.admin_token,
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..body.len() / 2]).unwrap();
    stream.flush().unwrap();
    // The server has read the headers once the upload's part file exists.
    let tmp = dir.path().join("data/artifacts/tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.signal_terminate();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("SIGTERM received") {
        assert!(
            std::time::Instant::now() < deadline,
            "no shutdown began:\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stream.write_all(&body[body.len() / 2..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = server
        .wait_exit(std::time::Duration::from_secs(20))
        .expect("it stops");
    assert!(status.success(), "{}", server.log());
}
