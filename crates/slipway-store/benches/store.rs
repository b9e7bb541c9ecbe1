//! Benchmarks of the store: event append rate with batched commits, and `Store::verify_chain`
//! over a million stored events, on SQLite and PostgreSQL. Run with
//! `cargo bench -p slipway-store --bench store` (or `bench/store.sh`); figures go to
//! `docs/benchmarks.md`.
//!
//! A plain binary (`harness = false`): each figure is measured several times and the median is
//! printed. SQLite lives in a temporary directory; PostgreSQL is the testkit's throwaway cluster
//! (durability off: `fsync`, `synchronous_commit` and `full_page_writes` are disabled), and is
//! skipped when not installed. `SLIPWAY_BENCH_EVENTS` overrides the number of events of the
//! verification benchmark (default 1,000,000); arguments `append` or `verify` run only those.

use std::time::{Duration, Instant};

use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use slipway_store::{NewEvent, Store};
use slipway_testkit::store::{self, TestStore};

const T0: Time = Time::from_millis(1_800_000_000_000);
const REPETITIONS: usize = 5;
/// Batch sizes of the append benchmark: one commit per `append_events` call.
const BATCHES: [usize; 3] = [1, 100, 1000];
/// Events appended per repetition, by batch size: single-event commits are slower, so fewer.
const APPENDED: [usize; 3] = [2_000, 20_000, 50_000];
/// Batch size used to build the log for the verification benchmark.
const BUILD_BATCH: usize = 1000;

fn main() {
    let events = std::env::var("SLIPWAY_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // `cargo bench` passes `--bench`; any other argument picks benchmarks by name.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!("slipway-store benchmarks: median of {REPETITIONS} repetitions");
        if wanted("append") {
            let sqlite = store::sqlite().await;
            bench_append(&sqlite).await;
            sqlite.close().await;
            match store::postgres("bench_append").await {
                Some(pg) => {
                    bench_append(&pg).await;
                    pg.close().await;
                }
                None => println!("append (postgres): skipped, PostgreSQL is not installed"),
            }
        }
        if wanted("verify") {
            let sqlite = store::sqlite().await;
            bench_verify(&sqlite, events).await;
            sqlite.close().await;
            match store::postgres("bench_verify").await {
                Some(pg) => {
                    bench_verify(&pg, events).await;
                    pg.close().await;
                }
                None => println!("verify (postgres): skipped, PostgreSQL is not installed"),
            }
        }
    });
}

/// An event like the ones deploys append: a deploy id, a short kind, ~70 bytes of JSON.
fn event(n: usize) -> NewEvent {
    NewEvent {
        deploy: Some(DeployId(n as i64 / 100 + 1)),
        kind: "effect_requested".to_owned(),
        payload: format!(
            "{{\"type\":\"effect_requested\",\"key\":\"{}/3/1/launch\",\"action\":\"launch\"}}",
            n / 100 + 1
        ),
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

async fn append(store: &Store, total: usize, batch: usize, first: usize) {
    let events: Vec<NewEvent> = (first..first + total).map(event).collect();
    for chunk in events.chunks(batch) {
        store.append_events(chunk, T0).await.expect("events append");
    }
}

async fn bench_append(db: &TestStore) {
    let mut appended = 0;
    for (batch, total) in BATCHES.into_iter().zip(APPENDED) {
        let mut rates = Vec::new();
        for _ in 0..REPETITIONS {
            let started = Instant::now();
            append(&db.store, total, batch, appended).await;
            rates.push(total as f64 / seconds(started.elapsed()));
            appended += total;
        }
        let rate = median(rates);
        let goal = if db.name() == "sqlite" && batch > 1 {
            if rate >= 20_000.0 {
                "; goal ≥ 20,000 events/s: met"
            } else {
                "; goal ≥ 20,000 events/s: MISSED"
            }
        } else {
            ""
        };
        println!(
            "append ({}): batches of {batch:>4}, {total} events per repetition: {rate:.0} \
             events/s (median), {:.0} commits/s{goal}",
            db.name(),
            rate / batch as f64
        );
    }
    let report = db.store.verify_chain().await.expect("the chain verifies");
    assert_eq!(
        (report.verified, report.broken),
        (appended as u64, None),
        "the appended log is intact"
    );
}

async fn bench_verify(db: &TestStore, count: usize) {
    let started = Instant::now();
    let mut built = 0;
    while built < count {
        let batch = BUILD_BATCH.min(count - built);
        append(&db.store, batch, batch, built).await;
        built += batch;
    }
    let build = seconds(started.elapsed());
    eprintln!(
        "verify ({}): built a log of {count} events in {build:.1} s; verifying",
        db.name()
    );
    let mut times = Vec::new();
    for _ in 0..REPETITIONS {
        let started = Instant::now();
        let report = db
            .store
            .verify_chain()
            .await
            .expect("the chain can be read");
        times.push(seconds(started.elapsed()));
        assert_eq!((report.verified, report.broken), (count as u64, None));
    }
    let time = median(times);
    let goal = if time * 1_000_000.0 / count as f64 <= 1.0 {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "verify ({}): Store::verify_chain over {count} stored events (built in {build:.1} s, \
         {:.0} events/s): {time:.3} s (median), {:.0} events/s; goal 1,000,000 events < 1 s: \
         {goal}",
        db.name(),
        count as f64 / build,
        count as f64 / time
    );
}
