//! Benchmark of the changelog of a range of a real repository, end to end: `commits` (one
//! `git log`), `build` and `to_markdown`, the median of several runs. `bench/changelog.sh`
//! generates the repository and runs git-cliff on the same range for comparison.
//!
//! Usage: `cargo bench -p slipway-release --bench changelog -- REPO RANGE`, or with
//! `SLIPWAY_BENCH_REPO` and `SLIPWAY_BENCH_RANGE`; `SLIPWAY_BENCH_RUNS` (default 7) runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slipway_release::{Categories, build, commits};

fn main() {
    // `cargo bench` passes `--bench` to harness-less benchmarks; anything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let repo = args
        .first()
        .cloned()
        .or_else(|| std::env::var("SLIPWAY_BENCH_REPO").ok());
    let range = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("SLIPWAY_BENCH_RANGE").ok());
    let (Some(repo), Some(range)) = (repo, range) else {
        eprintln!("error: no repository or range to read");
        eprintln!(
            "hint: pass REPO RANGE after `--`, set SLIPWAY_BENCH_REPO and SLIPWAY_BENCH_RANGE, \
             or run bench/changelog.sh, which generates a repository"
        );
        std::process::exit(2);
    };
    let runs: usize = std::env::var("SLIPWAY_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .filter(|runs| *runs > 0)
        .unwrap_or(7);
    let repo = PathBuf::from(repo);
    let categories = Categories::default();

    let mut totals = Vec::with_capacity(runs);
    let mut reads = Vec::with_capacity(runs);
    let mut builds = Vec::with_capacity(runs);
    let mut renders = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let read = match commits(&repo, &range) {
            Ok(read) => read,
            Err(error) => {
                eprintln!("error: {error}");
                eprintln!("hint: {}", error.hint());
                std::process::exit(1);
            }
        };
        let read_done = Instant::now();
        let changelog = build(&read, &categories);
        let build_done = Instant::now();
        let markdown = changelog.to_markdown();
        let end = Instant::now();
        totals.push(end - start);
        reads.push(read_done - start);
        builds.push(build_done - read_done);
        renders.push(end - build_done);
        last = Some((read.len(), changelog, markdown.len()));
    }
    let (commit_count, changelog, markdown_bytes) = last.expect("at least one run");
    println!("changelog of {range} in {}", repo.display());
    println!(
        "commits {commit_count}: entries {}, reverts {}, dependencies {}, needs a category {}; \
         markdown {markdown_bytes} bytes",
        changelog.entries.len(),
        changelog.reverts.len(),
        changelog.dependencies.len(),
        changelog.unassigned.len(),
    );
    println!(
        "median of {runs}: total {:.1} ms (git log and parse {:.1} ms, build {:.1} ms, \
         markdown {:.1} ms); min {:.1} ms, max {:.1} ms",
        millis(median(&totals)),
        millis(median(&reads)),
        millis(median(&builds)),
        millis(median(&renders)),
        millis(*totals.iter().min().expect("at least one run")),
        millis(*totals.iter().max().expect("at least one run")),
    );
    // One line for scripts: the median in seconds.
    println!(
        "slipway_median_seconds {:.4}",
        median(&totals).as_secs_f64()
    );
}

fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
