//! A local target in a temporary data directory, with a real proxy on a loopback port and a
//! small python3 HTTP app as the artifact. Dropping the harness kills every process group its
//! state file names, so no test leaves an instance behind, even when it fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use slipway_core::config::{EnvironmentConfig, ServiceConfig, parse_config};
use slipway_core::deploy::{DeployId, EffectKey, ReleaseRef, Split};
use slipway_core::time::Span;
use slipway_engine::plugin::{ConfigSource, FleetState, LaunchRequest, Scope, Target};
use slipway_proxy::Proxy;
use slipway_targets::local::state_file;
use slipway_targets::{InstanceInfo, LocalSettings, LocalTarget, LocalTiming, route_for};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub(crate) const APP: &str = include_str!("local_app/app.py");

/// Timings short enough for tests.
pub(crate) fn quick_timing() -> LocalTiming {
    LocalTiming {
        drain_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(5),
        restart_backoff: Duration::from_millis(300),
        restart_backoff_max: Duration::from_secs(5),
        task_timeout: Duration::from_secs(20),
    }
}

pub(crate) struct Local {
    pub(crate) dir: TempDir,
    pub(crate) environment: EnvironmentConfig,
    pub(crate) services: Vec<ServiceConfig>,
    pub(crate) timing: LocalTiming,
    pub(crate) proxy: Proxy,
    pub(crate) target: Option<LocalTarget>,
    /// Where the target reads config versions (none unless a test gives one).
    pub(crate) config: Option<Arc<dyn ConfigSource>>,
    /// The proxy's listener for `idp`, and what stops it.
    pub(crate) proxy_addr: SocketAddr,
    proxy_stop: watch::Sender<bool>,
}

impl Local {
    /// A `dev` environment with service `idp`: `start` run in the release directory, with the
    /// given `pools` and a quick health check (every 100ms, healthy at once, unhealthy after 3 failures).
    pub(crate) async fn new(pools: &str, extra: &str) -> Local {
        Self::with_start(pools, extra, "exec python3 app {control}").await
    }

    pub(crate) async fn with_start(pools: &str, extra: &str, start: &str) -> Local {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("control");
        std::fs::create_dir_all(&control).unwrap();
        let start = start.replace("{control}", &control.display().to_string());
        let text = format!(
            "[[service]]\nname = \"idp\"\nstart = '''{start}'''\n{extra}\n\
             health = {{ path = \"/up\", interval = \"100ms\", timeout = \"2s\", healthy_threshold = 1, unhealthy_threshold = 3 }}\n\
             pools = {pools}\n\n[environment.dev]\n"
        );
        let config = parse_config("slipway.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        let proxy = Proxy::open(dir.path().join("data/proxy.json"), Default::default()).unwrap();
        let (proxy_addr, proxy_stop) = serve(&proxy).await;
        let mut local = Local {
            environment: config.environment("dev").unwrap().clone(),
            services: config.services.clone(),
            timing: quick_timing(),
            proxy,
            target: None,
            config: None,
            proxy_addr,
            proxy_stop,
            dir,
        };
        local.open().await;
        local
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn control(&self, name: &str) -> PathBuf {
        self.dir.path().join("control").join(name)
    }

    pub(crate) fn settings(&self) -> LocalSettings {
        LocalSettings {
            data_dir: self.data_dir(),
            artifact_dir: self.data_dir().join("artifacts"),
            services: self.services.clone(),
            proxy: self.proxy.clone(),
            timing: self.timing.clone(),
            config: self.config.clone(),
        }
    }

    /// Opens the target again, reading config versions from `source`.
    pub(crate) async fn read_config_from(&mut self, source: Arc<dyn ConfigSource>) {
        self.config = Some(source);
        self.open().await;
    }

    /// Opens the target (again), as a restarted slipway does.
    pub(crate) async fn open(&mut self) {
        self.target = None;
        let target = LocalTarget::open(&self.environment, self.settings())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.target = Some(target);
    }

    /// Stops supervising, as a slipway killed with SIGKILL does; instances keep running.
    pub(crate) fn close(&mut self) {
        if let Some(target) = self.target.take() {
            target.close();
        }
    }

    /// A restarted slipway: a new proxy from the same state file and the target opened again.
    pub(crate) async fn restart(&mut self) {
        self.close();
        let _ = self.proxy_stop.send(true);
        self.proxy = Proxy::open(self.data_dir().join("proxy.json"), Default::default()).unwrap();
        let (addr, stop) = serve(&self.proxy).await;
        self.proxy_addr = addr;
        self.proxy_stop = stop;
        self.open().await;
    }

    pub(crate) fn target(&self) -> &LocalTarget {
        self.target.as_ref().expect("the target is open")
    }

    /// Stores `bytes` in the artifact cache; returns its digest.
    pub(crate) fn store_artifact(&self, bytes: &[u8]) -> String {
        let hex = hex(&Sha256::digest(bytes));
        let path = self.data_dir().join("artifacts/sha256").join(&hex);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// Release `RC n` of the test app as a single-file artifact (different bytes per `n`).
    pub(crate) fn release(&self, n: u32) -> ReleaseRef {
        let digest = self.store_artifact(format!("{APP}\n# build {n}\n").as_bytes());
        release_with(n, digest)
    }

    pub(crate) async fn launch(
        &self,
        key: &EffectKey,
        release: &ReleaseRef,
        pools: &[(&str, u32)],
    ) -> Result<String, String> {
        let request = LaunchRequest {
            release: release.clone(),
            pools: pools
                .iter()
                .map(|(p, n)| ((*p).to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
            timeout: Span::from_secs(20),
        };
        self.target()
            .launch(key, &scope(), &request)
            .await
            .map_err(|e| e.message)
    }

    pub(crate) async fn traffic(&self, weights: &[(&ReleaseRef, u32)]) {
        let split = Split {
            weights: weights.iter().map(|(r, w)| (r.label.clone(), *w)).collect(),
            sticky: false,
            header: None,
            header_version: None,
        };
        self.target()
            .set_traffic(&key("traffic"), &scope(), &split)
            .await
            .unwrap();
    }

    /// What the target observes, without the instances' endpoints (ports change per run).
    pub(crate) async fn fleets(&self) -> Vec<FleetState> {
        let mut fleets = self.target().observe(&scope()).await.unwrap().fleets;
        for fleet in &mut fleets {
            fleet.endpoints.clear();
        }
        fleets
    }

    pub(crate) async fn instances(&self) -> Vec<InstanceInfo> {
        self.target().instances().await
    }

    /// A GET through the proxy: status and body.
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        get(self.proxy_addr, path).await
    }

    /// Waits until `check` holds for the instances, for at most 20 seconds.
    pub(crate) async fn wait_instances(
        &self,
        what: &str,
        check: impl Fn(&[InstanceInfo]) -> bool,
    ) -> Vec<InstanceInfo> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let instances = self.instances().await;
            if check(&instances) {
                return instances;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {instances:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.close();
        let _ = self.proxy_stop.send(true);
        kill_recorded(&state_file(&self.data_dir(), "dev"));
    }
}

/// SIGKILLs every process group a local target's state file names.
pub(crate) fn kill_recorded(state_file: &Path) {
    let Ok(text) = std::fs::read_to_string(state_file) else {
        return;
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    for instance in state["instances"].as_array().into_iter().flatten() {
        if let Some(pid) = instance["pid"].as_u64() {
            kill_group(pid as u32);
        }
    }
}

pub(crate) fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether process `pid` runs (and is not a zombie).
pub(crate) fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some(Some('Z' | 'X')) | None)
    })
}

async fn serve(proxy: &Proxy) -> (SocketAddr, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = watch::channel(false);
    let proxy = proxy.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let _ = proxy
            .serve(route_for("dev", "idp", None), listener, shutdown)
            .await;
    });
    (addr, stop)
}

/// A GET with `Connection: close`: status and body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn release_with(n: u32, digest: String) -> ReleaseRef {
    ReleaseRef {
        label: format!("RC {n}"),
        version: format!("1.{n}.0"),
        artifact: digest,
        config: format!("config-{n}"),
        config_version: None,
    }
}

pub(crate) fn key(op: &str) -> EffectKey {
    EffectKey {
        deploy: DeployId(1),
        step: "3".to_owned(),
        attempt: 1,
        op: op.to_owned(),
    }
}

pub(crate) fn scope() -> Scope {
    Scope {
        service: "idp".to_owned(),
        environment: "dev".to_owned(),
        region: None,
    }
}

pub(crate) fn web(n: u32) -> [(&'static str, u32); 1] {
    [("web", n)]
}
