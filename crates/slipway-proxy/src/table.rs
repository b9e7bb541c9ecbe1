//! A route's routing table: an immutable picture of which version gets which share and which
//! backends may take requests. Every change builds a new table and swaps it in whole, so a
//! request sees the old table or the new one, never half of each.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::metrics::gauge::Gauge;
use slipway_core::deploy::Split;
use tokio::sync::Notify;

use crate::error::ProxyError;
use crate::metrics::VersionMetrics;
use crate::route::Route;
use crate::state::RouteConfig;

/// Sticky assignment divides users into this many buckets (basis points, like a canary share).
pub(crate) const BUCKETS: u64 = 10_000;

/// What outlives tables: a backend's requests in flight and whether it is draining.
#[derive(Debug, Default)]
pub(crate) struct BackendLive {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Woken when `in_flight` drops to zero.
    idle: Notify,
}

impl BackendLive {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
    }

    /// Counts a request against this backend unless it is draining.
    ///
    /// Counting first and checking after (both `SeqCst`) closes the race with `drain`, which sets
    /// the flag first and reads the count after: either the request sees the flag and backs off,
    /// or the drain sees the request and waits for it.
    pub(crate) fn claim(self: &Arc<Self>, gauge: &Gauge) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.draining.load(Ordering::SeqCst) {
            self.release();
            return None;
        }
        gauge.inc();
        Some(InFlight {
            live: Arc::clone(self),
            gauge: gauge.clone(),
        })
    }

    fn release(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no request is in flight; cancel-safe.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A request counted against a backend and its version until dropped (when its response ends).
#[derive(Debug)]
pub(crate) struct InFlight {
    live: Arc<BackendLive>,
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
        self.live.release();
    }
}

/// A backend that may take requests: healthy and not draining when the table was built.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: Arc<str>,
    pub(crate) authority: Authority,
    pub(crate) live: Arc<BackendLive>,
}

/// One version of the route.
#[derive(Debug)]
pub(crate) struct VersionRoute {
    pub(crate) label: Arc<str>,
    weight: u64,
    backends: Vec<Slot>,
    /// Round-robin start for the least-in-flight scan.
    next: AtomicUsize,
    pub(crate) metrics: VersionMetrics,
}

#[derive(Debug)]
struct HeaderRoute {
    name: HeaderName,
    /// `None`: any value of the header matches.
    value: Option<HeaderValue>,
    version: usize,
}

/// Why no backend was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoBackend {
    /// The engine has not set traffic for the route yet.
    NoSplit,
    /// No version with traffic has a healthy backend (other than one that just failed).
    NoHealthy,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    split_set: bool,
    pub(crate) sticky: bool,
    /// Newest release label first (`RC 113` before `RC 112`, compared as numbers): under a
    /// sticky split the canary, which is the newer release, gets the lowest buckets, so raising
    /// its share (to 50% and beyond) keeps its users and adds more. An order by weight would
    /// flip at equal weights and move users across.
    versions: Vec<VersionRoute>,
    header: Option<HeaderRoute>,
    /// Backends of all versions in the table.
    pub(crate) backends: usize,
}

/// The header route of a split, parsed: `Name: value` or just `Name`.
fn parse_header(
    route: &Route,
    split: &Split,
) -> Result<Option<(HeaderName, Option<HeaderValue>)>, ProxyError> {
    let Some(header) = &split.header else {
        return Ok(None);
    };
    let invalid = || ProxyError::InvalidHeaderRoute {
        route: route.clone(),
        header: header.clone(),
    };
    let (name, value) = match header.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (header.trim(), None),
    };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
    let value = match value {
        Some(value) => Some(HeaderValue::from_str(value).map_err(|_| invalid())?),
        None => None,
    };
    if split.header_version.is_none() {
        return Err(invalid());
    }
    Ok(Some((name, value)))
}

/// Checks what `Table::build` would otherwise have to reject.
pub(crate) fn validate(route: &Route, config: &RouteConfig) -> Result<(), ProxyError> {
    if let Some(split) = &config.split {
        parse_header(route, split)?;
    }
    let mut ids = BTreeSet::new();
    for stored in &config.backends {
        if !ids.insert(stored.backend.id.as_str()) {
            return Err(ProxyError::DuplicateBackend {
                route: route.clone(),
                id: stored.backend.id.clone(),
            });
        }
    }
    Ok(())
}

/// Every version the route knows of: in the split or with a backend.
pub(crate) fn versions(config: &RouteConfig) -> BTreeSet<String> {
    let mut versions: BTreeSet<String> = config
        .backends
        .iter()
        .map(|stored| stored.backend.version.clone())
        .collect();
    if let Some(split) = &config.split {
        versions.extend(split.weights.keys().cloned());
        versions.extend(split.header_version.clone());
    }
    versions
}

impl Table {
    /// Builds the table of a validated config. `live` has an entry per backend id and
    /// `metrics` one per version of `versions(config)`.
    pub(crate) fn build(
        route: &Route,
        config: &RouteConfig,
        live: &HashMap<String, Arc<BackendLive>>,
        metrics: &BTreeMap<String, VersionMetrics>,
    ) -> Table {
        let Some(split) = &config.split else {
            return Table::default();
        };
        let header = parse_header(route, split).ok().flatten();
        let mut labels: BTreeSet<&str> = split
            .weights
            .iter()
            .filter(|(_, weight)| **weight > 0)
            .map(|(label, _)| label.as_str())
            .collect();
        labels.extend(split.header_version.as_deref().filter(|_| header.is_some()));
        let mut versions: Vec<VersionRoute> = labels
            .into_iter()
            .map(|label| VersionRoute {
                label: Arc::from(label),
                weight: u64::from(split.weights.get(label).copied().unwrap_or(0)),
                backends: config
                    .backends
                    .iter()
                    .filter(|stored| {
                        stored.backend.version == label
                            && stored.backend.healthy
                            && !stored.draining
                    })
                    .map(|stored| Slot {
                        id: Arc::from(stored.backend.id.as_str()),
                        authority: authority(stored.backend.addr),
                        live: Arc::clone(&live[&stored.backend.id]),
                    })
                    .collect(),
                next: AtomicUsize::new(0),
                metrics: metrics[label].clone(),
            })
            .collect();
        versions.sort_by(|a, b| natural_order(&b.label, &a.label));
        let header = header.and_then(|(name, value)| {
            let wanted = split.header_version.as_deref()?;
            let version = versions.iter().position(|v| &*v.label == wanted)?;
            Some(HeaderRoute {
                name,
                value,
                version,
            })
        });
        Table {
            split_set: true,
            sticky: split.sticky,
            backends: versions.iter().map(|version| version.backends.len()).sum(),
            versions,
            header,
        }
    }

    /// Picks a version and one of its backends for a request.
    ///
    /// `bucket` (0..BUCKETS) is the client's sticky bucket on a sticky table; `roll` a random
    /// number otherwise. `exclude` is a backend that just failed this request.
    pub(crate) fn pick(
        &self,
        headers: &HeaderMap,
        bucket: Option<u64>,
        roll: u64,
        exclude: Option<&str>,
    ) -> Result<(&VersionRoute, &Slot), NoBackend> {
        if !self.split_set {
            return Err(NoBackend::NoSplit);
        }
        let usable = |version: &VersionRoute| {
            version
                .backends
                .iter()
                .any(|slot| Some(&*slot.id) != exclude)
        };
        // The internal-tenant route, while its version has a healthy backend; otherwise the
        // tenant's requests share the normal split rather than fail.
        if let Some(route) = &self.header {
            let matched = headers
                .get_all(&route.name)
                .iter()
                .any(|value| route.value.as_ref().is_none_or(|wanted| value == wanted));
            let version = &self.versions[route.version];
            if matched && usable(version) {
                return Ok((version, version.backend(exclude)));
            }
        }
        let eligible = || {
            self.versions
                .iter()
                .filter(|version| version.weight > 0 && usable(version))
        };
        let total: u64 = eligible().map(|version| version.weight).sum();
        if total == 0 {
            return Err(NoBackend::NoHealthy);
        }
        let mut point = match bucket {
            Some(bucket) => bucket.min(BUCKETS - 1) * total / BUCKETS,
            None => roll % total,
        };
        let mut chosen = None;
        for version in eligible() {
            if point < version.weight {
                chosen = Some(version);
                break;
            }
            point -= version.weight;
        }
        let version = chosen.expect("the point falls below the total weight");
        Ok((version, version.backend(exclude)))
    }
}

impl VersionRoute {
    /// The backend with the fewest requests in flight, scanning from a rotating start so equal
    /// loads take turns. The caller checked that one not excluded exists.
    fn backend(&self, exclude: Option<&str>) -> &Slot {
        let count = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(&Slot, usize)> = None;
        for offset in 0..count {
            let slot = &self.backends[(start + offset) % count];
            if Some(&*slot.id) == exclude {
                continue;
            }
            let load = slot.live.in_flight();
            if best.is_none_or(|(_, least)| load < least) {
                best = Some((slot, load));
                if load == 0 {
                    break;
                }
            }
        }
        best.expect("a usable version has a backend that is not excluded")
            .0
    }
}

/// Compares labels with runs of digits as numbers: `RC 9` < `RC 10` < `RC 10.1`.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(label: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = label;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            Some((digits, chunk))
        })
    }
    fn key((digits, chunk): (bool, &str)) -> (bool, usize, &str, &str) {
        let number = if digits {
            chunk.trim_start_matches('0')
        } else {
            ""
        };
        (!digits, number.len(), number, chunk)
    }
    chunks(a).map(key).cmp(chunks(b).map(key))
}

fn authority(addr: SocketAddr) -> Authority {
    addr.to_string()
        .parse()
        .expect("a socket address is a valid authority")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::route::Backend;
    use crate::state::StoredBackend;

    fn config(split: Split, backends: &[(&str, &str, bool)]) -> (Route, RouteConfig) {
        let route = Route::new("idp", None);
        let backends = backends
            .iter()
            .enumerate()
            .map(|(i, (id, version, healthy))| StoredBackend {
                backend: Backend {
                    id: (*id).to_owned(),
                    addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                    version: (*version).to_owned(),
                    healthy: *healthy,
                },
                draining: false,
            })
            .collect();
        let config = RouteConfig {
            split: Some(split),
            backends,
        };
        (route, config)
    }

    fn table(route: &Route, config: &RouteConfig) -> Table {
        let registry = Metrics::new();
        let live = config
            .backends
            .iter()
            .map(|b| (b.backend.id.clone(), Arc::default()))
            .collect();
        let metrics = versions(config)
            .into_iter()
            .map(|v| {
                let m = registry.version(route, &v);
                (v, m)
            })
            .collect();
        Table::build(route, config, &live, &metrics)
    }

    fn canary(share_bp: u32) -> Split {
        Split {
            weights: BTreeMap::from([
                ("RC 10".into(), share_bp),
                ("RC 9".into(), 10_000 - share_bp),
            ]),
            sticky: true,
            header: None,
            header_version: None,
        }
    }

    #[test]
    fn the_canary_gets_the_buckets_below_its_share() {
        let (route, config) = config(canary(1_000), &[("a", "RC 9", true), ("b", "RC 10", true)]);
        let table = table(&route, &config);
        let headers = HeaderMap::new();
        let version = |bucket| &*table.pick(&headers, Some(bucket), 0, None).unwrap().0.label;
        assert_eq!(version(0), "RC 10");
        assert_eq!(version(999), "RC 10");
        assert_eq!(version(1_000), "RC 9");
        assert_eq!(version(9_999), "RC 9");
    }

    #[test]
    fn release_labels_compare_as_numbers() {
        let mut labels = ["RC 10", "RC 9", "RC 10.1", "RC 112", "RC 10.10", "RC 10.2"];
        labels.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            labels,
            ["RC 9", "RC 10", "RC 10.1", "RC 10.2", "RC 10.10", "RC 112"]
        );
    }

    #[test]
    fn the_canary_keeps_its_buckets_as_its_share_grows() {
        for share in [1_000, 5_000, 9_000] {
            let (route, config) =
                config(canary(share), &[("a", "RC 10", true), ("b", "RC 9", true)]);
            let table = table(&route, &config);
            let (version, _) = table.pick(&HeaderMap::new(), Some(0), 0, None).unwrap();
            assert_eq!(&*version.label, "RC 10", "at {share}");
        }
    }

    #[test]
    fn a_version_without_healthy_backends_gets_nothing() {
        let (route, config) = config(canary(5_000), &[("a", "RC 9", true), ("b", "RC 10", false)]);
        let table = table(&route, &config);
        for roll in 0..100 {
            let (version, slot) = table.pick(&HeaderMap::new(), None, roll, None).unwrap();
            assert_eq!((&*version.label, &*slot.id), ("RC 9", "a"));
        }
        assert_eq!(
            table
                .pick(&HeaderMap::new(), None, 0, Some("a"))
                .unwrap_err(),
            NoBackend::NoHealthy
        );
    }

    #[test]
    fn no_split_routes_nothing() {
        let route = Route::new("idp", None);
        let table = table(&route, &RouteConfig::default());
        assert_eq!(
            table.pick(&HeaderMap::new(), None, 0, None).unwrap_err(),
            NoBackend::NoSplit
        );
    }
}
