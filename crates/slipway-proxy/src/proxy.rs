//! The `Proxy` handle: routes and their settings, persisted before they take effect, and the
//! listeners that serve them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::counter::Counter;
use slipway_core::deploy::Split;
use tokio::net::TcpListener;

use crate::error::ProxyError;
use crate::forward::{self, RequestBody};
use crate::metrics::{Metrics, VersionMetrics, VersionSnapshot};
use crate::route::{Backend, Config, DrainReport, Route};
use crate::state::{self, RouteConfig, Routes, StoredBackend};
use crate::table::{self, BackendLive, Table};

/// Whether a routing change may take effect before it is saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// The split: a restart must route as the engine last said, so it applies only once saved.
    Required,
    /// Backends and their health: applied even if the save fails (they are refreshed by the
    /// health checks after a restart anyway).
    BestEffort,
}

/// slipway's reverse proxy. Cheap to clone: clones share routes, pools and metrics.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) client: Client<HttpConnector, RequestBody>,
    state_file: PathBuf,
    metrics: Metrics,
    /// The serving side of each route, looked up when a listener starts or metrics are read.
    routes: RwLock<HashMap<Route, Arc<RouteState>>>,
    /// What was persisted; its lock orders changes so the file and the tables agree.
    persisted: tokio::sync::Mutex<Routes>,
}

/// One route as the request path sees it.
pub(crate) struct RouteState {
    pub(crate) route: Route,
    pub(crate) table: ArcSwap<Table>,
    pub(crate) unrouted: Counter,
    /// What outlives tables. Changed only under `Inner::persisted`'s lock.
    lasting: Mutex<Lasting>,
}

#[derive(Default)]
struct Lasting {
    backends: HashMap<String, Arc<BackendLive>>,
    versions: BTreeMap<String, VersionMetrics>,
}

impl Proxy {
    /// Opens the proxy with the routing state saved in `state_file` (none if it does not exist
    /// yet); every later change is saved there before it takes effect.
    pub fn open(state_file: impl Into<PathBuf>, config: Config) -> Result<Proxy, ProxyError> {
        let state_file = state_file.into();
        let routes = state::load(&state_file)?;
        for (route, config) in &routes {
            table::validate(route, config)?;
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_backend)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        let proxy = Proxy {
            inner: Arc::new(Inner {
                config,
                client,
                state_file,
                metrics: Metrics::new(),
                routes: RwLock::default(),
                persisted: tokio::sync::Mutex::new(Routes::new()),
            }),
        };
        for (route, config) in &routes {
            proxy
                .route_state(route)
                .rebuild(config, &proxy.inner.metrics);
        }
        *proxy
            .inner
            .persisted
            .try_lock()
            .expect("nobody else has the proxy yet") = routes;
        Ok(proxy)
    }

    /// Routes `route`'s traffic as `split` says, from the next request on.
    pub async fn set_split(&self, route: &Route, split: &Split) -> Result<(), ProxyError> {
        self.update(route, Durability::Required, |config| {
            config.split = Some(split.clone());
            Ok(())
        })
        .await
    }

    /// Replaces `route`'s backends, with their health as the caller's checks found it. A backend
    /// being drained stays drained while its id is in the list.
    pub async fn set_backends(
        &self,
        route: &Route,
        backends: Vec<Backend>,
    ) -> Result<(), ProxyError> {
        self.update(route, Durability::BestEffort, |config| {
            config.backends = backends
                .into_iter()
                .map(|backend| {
                    let draining = config
                        .backends
                        .iter()
                        .any(|old| old.backend.id == backend.id && old.draining);
                    StoredBackend { backend, draining }
                })
                .collect();
            Ok(())
        })
        .await
    }

    /// Stops sending new requests to backend `id` of `route`, then waits until its requests in
    /// flight have finished or `timeout` has passed. The backend stays out of rotation until
    /// `set_backends` leaves it out; the caller then stops the instance.
    pub async fn drain(
        &self,
        route: &Route,
        id: &str,
        timeout: Duration,
    ) -> Result<DrainReport, ProxyError> {
        self.update(route, Durability::BestEffort, |config| {
            let stored = config
                .backends
                .iter_mut()
                .find(|stored| stored.backend.id == id)
                .ok_or_else(|| ProxyError::UnknownBackend {
                    route: route.clone(),
                    id: id.to_owned(),
                })?;
            stored.draining = true;
            Ok(())
        })
        .await?;
        let live = self
            .route_state(route)
            .lasting()
            .backends
            .get(id)
            .cloned()
            .expect("a stored backend has its live state");
        let started_with = live.in_flight();
        // A timeout is the report, not an error.
        let _ = tokio::time::timeout(timeout, live.idle()).await;
        let cut_off = live.in_flight();
        Ok(DrainReport {
            finished: started_with.saturating_sub(cut_off),
            cut_off,
        })
    }

    /// The split and backends `route` has now (`None` and empty when it was never set).
    pub async fn route(&self, route: &Route) -> (Option<Split>, Vec<Backend>) {
        let persisted = self.inner.persisted.lock().await;
        persisted.get(route).map_or((None, Vec::new()), |config| {
            let backends = config.backends.iter().map(|stored| stored.backend.clone());
            (config.split.clone(), backends.collect())
        })
    }

    /// Serves `route` on `listener`: HTTP/1.1, and HTTP/2 over cleartext with prior knowledge,
    /// until `shutdown` resolves; then stops accepting and lets open requests finish.
    pub async fn serve(
        &self,
        route: Route,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ProxyError> {
        let state = self.route_state(&route);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(%route, %error, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let inner = Arc::clone(&self.inner);
                    let state = Arc::clone(&state);
                    let client = forward::client_address(peer);
                    let service = service_fn(move |request| {
                        let client = client.clone();
                        forward::handle(Arc::clone(&inner), Arc::clone(&state), client, request)
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "client connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        // Requests in flight finish, but a response streaming forever cannot hold a shutdown:
        // past the request timeout (and a margin) the remaining connections are dropped.
        let limit = self.inner.config.request_timeout + std::time::Duration::from_secs(5);
        if tokio::time::timeout(limit, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(%route, "connections still open {limit:?} after shutdown began; dropping them");
        }
        Ok(())
    }

    /// Every route's metrics in the Prometheus text format, for a `/metrics` endpoint.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.encode()
    }

    /// Every route the proxy has a table for (a split or backends were set).
    pub fn routes(&self) -> Vec<Route> {
        let routes = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        routes.keys().cloned().collect()
    }

    /// Per version of `route`: requests, 5xx, latency, counted since each version joined the
    /// route. Empty for a route the proxy does not know.
    pub fn snapshot(&self, route: &Route) -> BTreeMap<String, VersionSnapshot> {
        let routes = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(state) = routes.get(route) else {
            return BTreeMap::new();
        };
        let lasting = state.lasting();
        lasting
            .versions
            .iter()
            .map(|(version, metrics)| (version.clone(), metrics.snapshot()))
            .collect()
    }

    /// Applies `change` to `route`'s config: validated, saved to the state file, then swapped in.
    /// A `BestEffort` change is swapped in even when the save fails.
    async fn update(
        &self,
        route: &Route,
        durability: Durability,
        change: impl FnOnce(&mut RouteConfig) -> Result<(), ProxyError>,
    ) -> Result<(), ProxyError> {
        let mut persisted = self.inner.persisted.lock().await;
        let mut config = persisted.get(route).cloned().unwrap_or_default();
        change(&mut config)?;
        table::validate(route, &config)?;
        if persisted.get(route) != Some(&config) {
            let mut next = persisted.clone();
            next.insert(route.clone(), config.clone());
            let bytes = state::encode(&next);
            let path = self.inner.state_file.clone();
            let written = tokio::task::spawn_blocking(move || state::write(&path, &bytes))
                .await
                .expect("writing the state file does not panic");
            match (written, durability) {
                (Ok(()), _) => {}
                (Err(error), Durability::Required) => return Err(error),
                // Health and draining take traffic away from instances: that must happen even
                // when the disk refuses; the next successful write records it.
                (Err(error), Durability::BestEffort) => {
                    tracing::error!(%route, %error, "routing state not saved; applied anyway");
                }
            }
            *persisted = next;
        }
        self.route_state(route)
            .rebuild(&config, &self.inner.metrics);
        Ok(())
    }

    fn route_state(&self, route: &Route) -> Arc<RouteState> {
        if let Some(state) = self
            .inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            return Arc::clone(state);
        }
        let mut routes = self
            .inner
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let state = routes.entry(route.clone()).or_insert_with(|| {
            Arc::new(RouteState {
                route: route.clone(),
                table: ArcSwap::from_pointee(Table::default()),
                unrouted: self.inner.metrics.unrouted(route),
                lasting: Mutex::default(),
            })
        });
        Arc::clone(state)
    }
}

impl RouteState {
    fn lasting(&self) -> std::sync::MutexGuard<'_, Lasting> {
        self.lasting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds the table of `config` and swaps it in. Draining flags are set before the swap, so
    /// a request still reading the old table cannot claim a backend that `drain` waits for.
    fn rebuild(&self, config: &RouteConfig, metrics: &Metrics) {
        let mut lasting = self.lasting();
        let mut backends = HashMap::with_capacity(config.backends.len());
        for stored in &config.backends {
            let live = lasting
                .backends
                .remove(&stored.backend.id)
                .unwrap_or_default();
            live.set_draining(stored.draining);
            backends.insert(stored.backend.id.clone(), live);
        }
        lasting.backends = backends;

        let wanted = table::versions(config);
        let mut versions = BTreeMap::new();
        for version in &wanted {
            let handles = lasting
                .versions
                .remove(version)
                .unwrap_or_else(|| metrics.version(&self.route, version));
            versions.insert(version.clone(), handles);
        }
        for gone in lasting.versions.keys() {
            metrics.remove_version(&self.route, gone);
        }
        lasting.versions = versions;

        let table = Table::build(&self.route, config, &lasting.backends, &lasting.versions);
        self.table.store(Arc::new(table));
    }
}
