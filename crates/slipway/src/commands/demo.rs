//! `slipway demo`: a real deploy on local processes, start to finish, in under two minutes.
//!
//! It starts an embedded control plane in a temporary directory, pushes three versions of the
//! demo service, and drives them through the API as a team would: v1 first; v2 through canary,
//! surge (the 50/50 state), bake, a confirmed scale-in; then a config change — a new greeting
//! and a secret API key — reviewed by a second person (the secret shown only by fingerprint)
//! and rolled out with the same artifact ("config recycle"); then v3, which fails a fifth of its
//! requests, is caught by slipway's checks on its canary and rolled back automatically. Two
//! people take part — alice deploys, bob approves and says go — and a light load runs through slipway's
//! proxy the whole time, so the end can say how many requests failed and why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::json;
use slipway_core::config::parse_config;
use slipway_server::views::{DeployView, EventView, Page};

use super::serve::{Running, StartOptions};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Leave the control plane and the demo service running at the end, until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Work in this directory instead of a temporary one (kept afterwards).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The demo's slipway.toml: short bake and canary so the whole story fits in two minutes.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"

# Config versions are sealed under this key; the demo writes a fresh one.
[secrets]
key_file = "master.key"

[[service]]
name = "demo"
start = "bin/start"
health = { path = "/up", interval = "250ms", timeout = "2s", healthy_threshold = 2, unhealthy_threshold = 2 }
pools = { web = { count = 2, traffic = true } }

[environment.prod]
target = "local"
listen = { demo = "127.0.0.1:0" }
protected = true
# The demo builds its artifact itself: there is no CI to sign it (docs/provenance.md).
provenance = "off"
approvals = { required = 1, expires = "30m" }
go_no_go = true
canary = { share = "25%", instances = 1, duration = "8s" }
bake = "12s"
confirm_scale_in = true
post_verify = false
analysis_interval = "1s"
inconclusive_limit = "30s"
launch_timeout = "60s"
checks = [
  { metric = "error_rate", max = "2%" },
  { metric = "latency_p99", max = "500ms" },
  { probe = "/up", status = 200 },
]
analysis = { window = "10s", step = "1s", min_requests = 10, min_samples = 5, compare = [{ metric = "error_rate", allowed_increase = "2%" }] }
"#;

/// The demo's three versions: (version, error rate).
const VERSIONS: [(&str, f64); 3] = [("v1", 0.0), ("v2", 0.0), ("v3", 0.2)];

pub(crate) async fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    let (dir, _temporary) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (dir.clone(), None)
        }
        None => {
            let temporary = tempfile::Builder::new().prefix("slipway-demo-").tempdir()?;
            (temporary.path().to_owned(), Some(temporary))
        }
    };
    say(&format!("working in {}", dir.display()));
    let config_path = dir.join("slipway.toml");
    std::fs::write(&config_path, CONFIG)?;
    write_master_key(&dir.join("master.key"))?;
    let config = parse_config("slipway.toml", CONFIG).map_err(|e| anyhow::anyhow!("{e}"))?;

    let running = super::serve::start(StartOptions {
        config,
        config_dir: dir.clone(),
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".to_owned(),
        database: None,
        max_artifact_size: 64 * 1024 * 1024,
    })
    .await?;
    // Interrupted or not, everything the demo started is stopped before it exits: its
    // instances run in their own process groups, out of reach of the terminal's signals.
    let outcome = tokio::select! {
        outcome = story(&running, &dir, started) => outcome,
        signal = super::serve::shutdown_signal() => {
            Err(anyhow::anyhow!("interrupted by {signal}; the demo stopped what it had started"))
        }
    };
    if outcome.is_ok() && args.keep {
        say("--keep: everything stays up; press Ctrl-C to stop");
        super::serve::shutdown_signal().await;
    }
    say("stopping the demo service's instances and the control plane");
    running.shutdown_stopping_instances().await?;
    outcome?;
    say(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

/// The deploys, from v1 to the rollback of v3.
async fn story(running: &Running, dir: &Path, started: Instant) -> Result<()> {
    let admin = running
        .admin_token
        .clone()
        .context("the demo's fresh data directory should have made an admin token")?;
    let admin = client(&running.url, &admin)?;
    say(&format!(
        "control plane at {} (API, /metrics, /healthz; the dashboard at {}/)",
        running.url, running.url
    ));
    let proxy = running
        .proxy_urls
        .iter()
        .find(|p| p.service == "demo")
        .map(|p| p.url.clone())
        .context("the proxy of the demo service did not start")?;
    say(&format!(
        "the demo service answers at {proxy}/ through slipway's proxy"
    ));

    let alice = person(&admin, "alice", "deployer").await?;
    let bob = person(&admin, "bob", "approver").await?;
    let slipway = std::env::current_exe().context("cannot find the slipway executable")?;
    for (version, error_rate) in VERSIONS {
        let artifact = demo_artifact(dir, &slipway, version, error_rate)?;
        push(&alice, &artifact, version).await?;
        say(&format!(
            "alice pushed {version} (error rate {:.0}%)",
            error_rate * 100.0
        ));
    }

    // The load starts before v1 so its canary has traffic to be judged on; what it meets before
    // v1 first answers (the proxy's 503: nothing serves yet) is not counted.
    say(&format!(
        "two clients send {proxy}/api/hello about 40 requests a second from now on"
    ));
    let load = Load::start(&proxy);
    let v1 = deploy(&alice, &bob, "v1").await?;
    expect(&v1, "succeeded")?;
    let before = load.counts();
    say(&format!("v1 serves at {proxy}/"));
    let v2 = deploy(&alice, &bob, "v2").await?;
    expect(&v2, "succeeded")?;
    let recycled = recycle_config(&alice, &bob, &proxy).await?;
    expect(&recycled, "succeeded")?;
    let v3 = deploy(&alice, &bob, "v3").await?;
    expect(&v3, "rolled_back")?;
    let after = load.stop().await;
    let (total, injected, dropped) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    say(&format!(
        "load through the proxy during the v2 and v3 deploys: {total} requests; {injected} were \
         v3's injected errors while it took traffic, {dropped} failed for any other reason \
         (dropped or refused during a swap)"
    ));
    say(&format!(
        "the audit trail: slipway --server {} --token $(cat {}) audit verify",
        running.url,
        dir.join("data/admin-token").display()
    ));
    say(&format!("{:.0} s so far", started.elapsed().as_secs_f64()));
    Ok(())
}

/// A new master key for the demo's config versions (kept when the directory is reused).
fn write_master_key(path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (_, text) = slipway_secrets::MasterKey::generate();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => Ok(writeln!(file, "{}", *text)?),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot write {}", path.display())),
    }
}

fn client(url: &str, token: &str) -> Result<Client> {
    Client::new(url, Some(token.to_owned()))
}

async fn person(admin: &Client, name: &str, role: &str) -> Result<Client> {
    let _: serde_json::Value = admin
        .post("/api/v1/users", &json!({"name": name, "role": role}))
        .await?;
    let token: serde_json::Value = admin
        .post("/api/v1/tokens", &json!({"user": name, "label": "demo"}))
        .await?;
    let token = token["token"].as_str().context("no token in the answer")?;
    admin.with_token(token)
}

/// A `.tar.gz` with `bin/start` (runs this slipway binary as the demo service) and `demo.toml`.
fn demo_artifact(dir: &Path, slipway: &Path, version: &str, error_rate: f64) -> Result<PathBuf> {
    let source = dir.join("build").join(version);
    std::fs::create_dir_all(source.join("bin"))?;
    let start = format!(
        "#!/bin/sh\nexec {} demo-service\n",
        slipway_targets::shell_quote(&slipway.to_string_lossy())
    );
    let script = source.join("bin/start");
    std::fs::write(&script, start)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        source.join("demo.toml"),
        format!("version = \"{version}\"\nerror_rate = {error_rate}\n"),
    )?;
    let path = dir.join("build").join(format!("demo-{version}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&path)
        .arg("-C")
        .arg(&source)
        .args(["bin", "demo.toml"])
        .status()
        .context("cannot run tar to pack the demo artifact")?;
    if !status.success() {
        bail!("tar failed to pack {}", path.display());
    }
    Ok(path)
}

async fn push(client: &Client, file: &Path, version: &str) -> Result<()> {
    let bytes = std::fs::read(file)?;
    let request = client
        .request(Method::POST, "/api/v1/artifacts")
        .query(&[("service", "demo"), ("version", version)])
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(bytes);
    let _: serde_json::Value = client.send(request).await?;
    Ok(())
}

/// Deploys `release` to prod and plays the people: bob approves and says go, alice confirms
/// scale-in. slipway checks the numbers every second and rolls back on its own.
/// Releases `version` and deploys it to prod.
async fn deploy(alice: &Client, bob: &Client, version: &str) -> Result<DeployView> {
    let release: serde_json::Value = alice
        .post(
            "/api/v1/releases",
            &json!({"service": "demo", "version": version}),
        )
        .await?;
    let label = release["label"].as_str().unwrap_or("?");
    say(&format!("alice releases {version} as {label}"));
    let created: DeployView = alice
        .post(
            "/api/v1/deploys",
            &json!({"service": "demo", "environment": "prod", "release": label}),
        )
        .await?;
    drive(alice, bob, created).await
}

/// "Config recycle": alice changes the greeting and adds a partner API key (a secret) in a new
/// config version; bob reviews the diff, where the key shows only as a fingerprint, and
/// approves it; alice rolls it out with the artifact that runs — no new build, no migration.
async fn recycle_config(alice: &Client, bob: &Client, proxy: &str) -> Result<DeployView> {
    let key = slipway_server::auth::random_hex(16);
    let change = json!({
        "set": {
            "DEMO_GREETING": { "value": "slipway" },
            "PARTNER_API_KEY": { "value": key, "secret": true },
        },
        "message": "greet slipway; partner API key",
    });
    let version: serde_json::Value = alice.post("/api/v1/config/demo/prod", &change).await?;
    let number = version["version"].as_u64().unwrap_or(0);
    say(&format!(
        "alice sets DEMO_GREETING and the secret PARTNER_API_KEY in prod: config version {number}, awaiting review"
    ));
    let diff: serde_json::Value = bob.get("/api/v1/config/demo/prod/diff").await?;
    for change in diff["changes"].as_array().into_iter().flatten() {
        let after = &change["after"];
        let shown = match after["kind"].as_str() {
            Some("secret") => format!("<secret {}>", after["fingerprint"].as_str().unwrap_or("?")),
            _ => format!("{:?}", after["value"].as_str().unwrap_or("")),
        };
        say(&format!(
            "  bob reviews the diff: + {} = {shown}",
            change["key"].as_str().unwrap_or("?")
        ));
    }
    let _: serde_json::Value = bob
        .post(
            &format!("/api/v1/config/demo/prod/versions/{number}/approve"),
            &json!({}),
        )
        .await?;
    say(&format!("  bob approves config version {number}"));
    let created: DeployView = alice
        .post("/api/v1/config/demo/prod/recycle", &json!({}))
        .await?;
    say(&format!(
        "alice recycles the config: {} is a `config` release of {} (no migration)",
        created.release.label, created.release.version
    ));
    let deploy = drive(alice, bob, created).await?;
    if deploy.phase.result.as_deref() == Some("succeeded") {
        let hello = reqwest::get(format!("{proxy}/api/hello"))
            .await?
            .text()
            .await?;
        say(&format!("{proxy}/api/hello now answers {}", hello.trim()));
    }
    Ok(deploy)
}

/// Follows a created deploy to its end, printing its steps and checks: bob approves and says
/// go, alice confirms scale-in.
async fn drive(alice: &Client, bob: &Client, created: DeployView) -> Result<DeployView> {
    let id = created.id;
    say(&format!(
        "alice starts deploy {id}: {} ({}) to prod — plan: {}",
        created.release.label,
        created.release.version,
        created
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    ));
    let mut after = 0;
    let mut acted = std::collections::BTreeSet::new();
    // The latest check's verdict shown, so only changes are printed (a check runs every second).
    let mut shown_verdict = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page: Page<EventView> = alice
            .get(&format!(
                "/api/v1/deploys/{id}/events?after={after}&limit=500"
            ))
            .await?;
        for event in &page.items {
            if event.kind == "checked" {
                let verdict = event.data["verdict"].as_str().unwrap_or("?").to_owned();
                if verdict != shown_verdict {
                    say(&format!(
                        "  deploy {id}: checks {verdict}: {}",
                        event.data["detail"].as_str().unwrap_or("")
                    ));
                    shown_verdict = verdict;
                }
            }
            if matches!(
                event.kind.as_str(),
                "step_started"
                    | "unwind_started"
                    | "deploy_finished"
                    | "approved"
                    | "go_acknowledged"
            ) {
                say(&format!(
                    "  deploy {id}: {}",
                    super::deploy::describe(event)
                ));
            }
        }
        after = page.next.unwrap_or(after);
        let deploy: DeployView = alice.get(&format!("/api/v1/deploys/{id}")).await?;
        if deploy.phase.result.is_some() {
            return Ok(deploy);
        }
        match deploy.phase.waiting_for.as_deref() {
            Some("approval") if acted.insert("approve") => {
                let binding = json!({
                    "artifact": deploy.binding.artifact,
                    "config": deploy.binding.config,
                    "plan": deploy.binding.plan,
                });
                let _: serde_json::Value = bob
                    .post(&format!("/api/v1/deploys/{id}/approve"), &binding)
                    .await?;
                say(&format!(
                    "  bob approves deploy {id} (artifact {})",
                    short(&deploy.binding.artifact)
                ));
            }
            Some("go") if acted.insert("go") => {
                // The go comes from someone other than the runner.
                say(&format!(
                    "  {} bob: go",
                    deploy.go_announcement.as_deref().unwrap_or("clear to go?")
                ));
                let _: serde_json::Value = bob
                    .post(&format!("/api/v1/deploys/{id}/go"), &json!({}))
                    .await?;
            }
            Some("scale_in_confirmation") if acted.insert("confirm") => {
                say(&format!(
                    "  the 50/50 state held; alice confirms scale-in of deploy {id}"
                ));
                let _: serde_json::Value = alice
                    .post(&format!("/api/v1/deploys/{id}/confirm"), &json!({}))
                    .await?;
            }
            _ => {}
        }
        if Instant::now() > deadline {
            bail!(
                "deploy {id} did not finish within two minutes; it is still {}",
                deploy.phase.state
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn expect(deploy: &DeployView, result: &str) -> Result<()> {
    if let Some(reason) = &deploy.end_reason {
        say(&format!(
            "deploy {} ended {}: {reason}",
            deploy.id,
            deploy.phase.result.as_deref().unwrap_or("?")
        ));
    }
    match deploy.phase.result.as_deref() {
        Some(found) if found == result => Ok(()),
        found => bail!(
            "deploy {} ended {:?}, expected {result}: {}",
            deploy.id,
            found,
            deploy.end_reason.as_deref().unwrap_or("no reason recorded")
        ),
    }
}

fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

fn say(text: &str) {
    println!("demo: {text}");
}

/// A light, steady load through the proxy (about 40 requests a second from two clients),
/// counting v3's injected errors apart from every other failure (a dropped or refused request).
struct Load {
    total: Arc<AtomicU64>,
    injected: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str) -> Load {
        let total = Arc::new(AtomicU64::new(0));
        let injected = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..2)
            .map(|_| {
                let counters = (
                    total.clone(),
                    injected.clone(),
                    dropped.clone(),
                    stop.clone(),
                );
                let url = format!("{url}/api/hello");
                tokio::spawn(async move {
                    let (total, injected, dropped, stop) = counters;
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let answer = http.get(&url).timeout(Duration::from_secs(10)).send().await;
                        total.fetch_add(1, Ordering::Relaxed);
                        match answer {
                            Ok(response) if response.status().is_success() => {}
                            Ok(response) => {
                                let text = response.text().await.unwrap_or_default();
                                if text.contains("failed this request on purpose") {
                                    injected.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(_) => {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
            })
            .collect();
        Load {
            total,
            injected,
            dropped,
            stop,
            tasks,
        }
    }

    /// So far: (requests, injected errors, other failures).
    fn counts(&self) -> (u64, u64, u64) {
        (
            self.total.load(Ordering::Relaxed),
            self.injected.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Stops the load and gives its final counts.
    async fn stop(mut self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        self.counts()
    }
}
