//! `twinfeed build` on generated corpora: a cold build (empty state) and a rebuild with
//! nothing changed, beside the floor of reading the same files, in one run. The real
//! release binary runs as a child under `/usr/bin/time` for its peak memory.
//!
//! `cargo bench --bench build` (TWINFEED_BENCH_SIZES, default "10000,100000";
//! TWINFEED_BENCH_ROUNDS, default 3, rounds of the cold build and rebuild per size;
//! TWINFEED_BENCH_KEEP=1 keeps each generated site and prints where, for profiling).

mod corpus;
mod settings;
mod timed;

use std::time::Duration;

fn stats(
    label: &str,
    times: &mut [Duration],
    peaks: &[Option<f64>],
    n_files: usize,
    floor: Duration,
) {
    times.sort();
    let median = times[times.len() / 2];
    let peak = peaks.iter().flatten().fold(None, |max: Option<f64>, &p| {
        Some(max.map_or(p, |m| m.max(p)))
    });
    println!(
        "  {label:<18} {:>9.3} s median ({:.3}–{:.3})  {:>8.0} files/s  {:>6.2}x floor  peak {}",
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        n_files as f64 / median.as_secs_f64(),
        median.as_secs_f64() / floor.as_secs_f64(),
        peak.map_or_else(|| "n/a".to_string(), |mib| format!("{mib:.1} MiB")),
    );
}

fn main() {
    let sizes = settings::sizes("10000,100000");
    let rounds = settings::number("TWINFEED_BENCH_ROUNDS", 3).max(1);
    println!(
        "build benchmark: {} cores, {rounds} rounds per size",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    for n_files in sizes {
        let site = tempfile::tempdir().expect("a temporary folder");
        let inbox = site.path().join("inbox");
        std::fs::create_dir_all(&inbox).expect("the inbox");
        let n_bytes = corpus::write(&inbox, n_files).expect("the corpus");
        let config = site.path().join("twinfeed.toml");
        std::fs::write(&config, "").expect("the config");
        println!("{n_files} files, {:.1} MB:", n_bytes as f64 / 1e6);
        let (mut floor, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cold_peaks, mut warm_peaks) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let _ = std::fs::remove_dir_all(site.path().join("state"));
            let _ = std::fs::remove_dir_all(site.path().join("public"));
            floor.push(corpus::read_all(&inbox));
            let (time, peak) = timed::twinfeed(&["build"], &config);
            cold.push(time);
            cold_peaks.push(peak);
            let (time, peak) = timed::twinfeed(&["build"], &config);
            warm.push(time);
            warm_peaks.push(peak);
        }
        floor.sort();
        let floor_median = floor[floor.len() / 2];
        println!(
            "  {:<18} {:>9.3} s median ({:.3}–{:.3})  {:>8.0} files/s",
            "floor: read files",
            floor_median.as_secs_f64(),
            floor[0].as_secs_f64(),
            floor[floor.len() - 1].as_secs_f64(),
            n_files as f64 / floor_median.as_secs_f64()
        );
        stats("cold build", &mut cold, &cold_peaks, n_files, floor_median);
        stats(
            "no-change rebuild",
            &mut warm,
            &warm_peaks,
            n_files,
            floor_median,
        );
        if std::env::var_os("TWINFEED_BENCH_KEEP").is_some() {
            println!("  kept {}", site.keep().display());
        }
    }
}
