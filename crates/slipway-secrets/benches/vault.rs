//! Benchmarks of config version secrets: sealing and opening a version of 50 keys, a
//! fingerprint, and a master key rotation over N stored versions on SQLite. Run with
//! `cargo bench -p slipway-secrets --bench vault`; figures go to `docs/benchmarks.md`.
//! `SLIPWAY_BENCH_VERSIONS` overrides the number of versions rotated (default 2,000).
//!
//! A plain binary (`harness = false`): each figure is the median of several repetitions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use slipway_core::settings::{Entry, Values};
use slipway_core::time::Time;
use slipway_secrets::{Keyring, MasterKey, Vault};
use slipway_store::{NewConfigVersion, Store};

const REPETITIONS: usize = 7;
const KEYS: usize = 50;

fn values() -> Values {
    (0..KEYS)
        .map(|i| {
            let entry = Entry {
                value: format!("value-{i}-{}", "x".repeat(40)),
                secret: i % 5 == 0,
            };
            (format!("KEY_{i}"), entry)
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median time of one call of `f`, measured over `runs` calls per repetition.
fn per_call(runs: u32, mut f: impl FnMut()) -> Duration {
    median(
        (0..REPETITIONS)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..runs {
                    f();
                }
                started.elapsed() / runs
            })
            .collect(),
    )
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() {
    let versions: u64 = std::env::var("SLIPWAY_BENCH_VERSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let store = runtime
        .block_on(Store::open(&url))
        .expect("the store opens");
    let (key, old_text) = MasterKey::generate();
    let vault = runtime
        .block_on(Vault::open(store.clone(), Keyring::new(key, Vec::new())))
        .expect("the vault opens");
    let values = values();
    println!("slipway-secrets benchmarks: median of {REPETITIONS} repetitions");

    let seal = per_call(2_000, || {
        black_box(vault.seal("idp", "prod", 1, black_box(&values)));
    });
    println!("seal a version of {KEYS} keys: {:.1} µs", micros(seal));

    let new = |n: u64| {
        let (sealed, digest) = vault.seal("idp", "prod", n, &values);
        NewConfigVersion {
            service: "idp".to_owned(),
            environment: "prod".to_owned(),
            sealed,
            digest,
            changed: vec!["KEY_1".to_owned()],
            by: "bench".to_owned(),
            message: None,
            approved: false,
            parent: None,
        }
    };
    let first = runtime
        .block_on(store.create_config_version(&new(1), Time::from_millis(0)))
        .expect("version 1");
    let open = per_call(2_000, || {
        black_box(vault.open_values(black_box(&first)).expect("it opens"));
    });
    println!("open a version of {KEYS} keys: {:.1} µs", micros(open));
    let fingerprint = per_call(100_000, || {
        black_box(vault.fingerprint(black_box("a-secret-value-of-some-length")));
    });
    println!("fingerprint a value: {:.2} µs", micros(fingerprint));

    let started = Instant::now();
    for n in 2..=versions {
        runtime
            .block_on(store.create_config_version(&new(n), Time::from_millis(0)))
            .expect("a version");
    }
    println!(
        "write {} more versions (one transaction and audit event each): {:.2} s",
        versions - 1,
        started.elapsed().as_secs_f64()
    );
    drop(vault);
    let (new_key, _) = MasterKey::generate();
    let old = MasterKey::parse(&old_text).expect("the old key");
    let vault = runtime
        .block_on(Vault::open(store.clone(), Keyring::new(new_key, vec![old])))
        .expect("the vault opens with both keys");
    let started = Instant::now();
    let count = runtime
        .block_on(vault.rotate("bench", Time::from_millis(0)))
        .expect("rotation");
    println!(
        "rotate the master key: {count} data keys re-wrapped ({versions} versions and the \
         fingerprint key) in one transaction: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}
