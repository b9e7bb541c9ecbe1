//! The demo app as a real process on loopback: health, version page, injected errors, settings
//! from demo.toml, and a clean stop on SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_slipway-demo");

/// The demo app on a free port; killed when dropped.
struct App {
    child: Child,
    url: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> App {
    let port = free_port();
    let stdout = std::fs::File::create(dir.join("stdout.log")).unwrap();
    let child = Command::new(BIN)
        .current_dir(dir)
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo app starts");
    let app = App {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/up", app.url)).await
            && response.status().is_success()
        {
            return app;
        }
        assert!(Instant::now() < deadline, "the demo app never answered /up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn page_shows_the_version_and_up_answers() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &[("DEMO_VERSION", "v2")]).await;
    let page = reqwest::get(format!("{}/", app.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("<strong id=\"version\">v2</strong>"),
        "{text}"
    );
    let hello = reqwest::get(format!("{}/api/hello", app.url))
        .await
        .unwrap();
    assert_eq!(
        hello.text().await.unwrap(),
        "{\"hello\":\"world\",\"version\":\"v2\"}\n"
    );
}

#[tokio::test]
async fn error_rate_from_demo_toml_fails_that_share_but_never_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("demo.toml"),
        "version = \"v3\"\nerror_rate = 0.5\n",
    )
    .unwrap();
    let app = start(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let mut failed = 0;
    for _ in 0..200 {
        let status = client
            .get(format!("{}/", app.url))
            .send()
            .await
            .unwrap()
            .status();
        if status == 500 {
            failed += 1;
        }
        let up = client
            .get(format!("{}/up", app.url))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(up, 200);
    }
    // 200 draws at p = 0.5: outside 50..150 has a probability below 1e-12.
    assert!((50..150).contains(&failed), "{failed} of 200 failed");
}

#[tokio::test]
async fn sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("DEMO_LATENCY_MS", "500"), ("DEMO_LOG_REQUESTS", "1")];
    let mut app = start(dir.path(), &env).await;
    let slow = tokio::spawn(reqwest::get(format!("{}/", app.url)));
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = dir.path().join("stdout.log");
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("handling GET /")
    {
        assert!(
            Instant::now() < deadline,
            "the request never reached the app"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status()
        .unwrap();
    let response = slow
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = app.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "it did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn missing_port_is_an_error() {
    let output = Command::new(BIN).env_remove("PORT").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("PORT is not set"));
}
