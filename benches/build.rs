//! `twinfeed build` on generated corpora: a cold build (empty state) and a rebuild with
//! nothing changed, beside two floors in the same run: reading the same files, and
//! creating as many files as the build's pages, of their sizes. The real release binary
//! runs as a child under `/usr/bin/time` for its peak memory.
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
    let median = median(times);
    let peak = peaks.iter().flatten().fold(None, |max: Option<f64>, &p| {
        Some(max.map_or(p, |m| m.max(p)))
    });
    println!(
        "  {label:<18} {:>9.3} s median ({:.3}–{:.3})  {:>8.0} files/s  {:>6.2}x read floor  peak {}",
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
        println!("{n_files} files, {:.1} MB:", n_bytes as f64 / 1e6);
        let (mut floor, mut pages_floor) = (Vec::new(), Vec::new());
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let (mut cold_peaks, mut warm_peaks) = (Vec::new(), Vec::new());
        // Each round builds into folders of its own, and nothing is deleted until the
        // end: on this machine's ext4 (no journal) creating files right after deleting
        // many costs several times more, which would measure the previous round's
        // cleanup rather than the build.
        for round in 0..rounds {
            let config = site.path().join(format!("twinfeed-{round}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[paths]\ninbox = \"inbox\"\noutput = \"public-{round}\"\n\
                     state = \"state-{round}/twinfeed.db\"\n"
                ),
            )
            .expect("the config");
            floor.push(corpus::read_all(&inbox));
            let (time, peak) = timed::twinfeed(&["build"], &config);
            cold.push(time);
            cold_peaks.push(peak);
            let public = site.path().join(format!("public-{round}"));
            pages_floor.push(create_like(
                &[&public.join("zh"), &public.join("en")],
                &site.path().join(format!("floor-{round}")),
            ));
            let (time, peak) = timed::twinfeed(&["build"], &config);
            warm.push(time);
            warm_peaks.push(peak);
        }
        let floor_median = median(&mut floor);
        let pages_median = median(&mut pages_floor);
        println!(
            "  {:<18} {:>9.3} s median ({:.3}–{:.3})  {:>8.0} files/s",
            "floor: read files",
            floor_median.as_secs_f64(),
            floor[0].as_secs_f64(),
            floor[floor.len() - 1].as_secs_f64(),
            n_files as f64 / floor_median.as_secs_f64()
        );
        println!(
            "  {:<18} {:>9.3} s median ({:.3}–{:.3})  (as many files as the pages, of \
             their sizes, in fresh folders)",
            "floor: create pages",
            pages_median.as_secs_f64(),
            pages_floor[0].as_secs_f64(),
            pages_floor[pages_floor.len() - 1].as_secs_f64(),
        );
        stats("cold build", &mut cold, &cold_peaks, n_files, floor_median);
        let cold_median = median(&mut cold);
        println!(
            "  {:<18} {:>9.2}x the two floors together (read files + create pages)",
            "",
            cold_median.as_secs_f64() / (floor_median + pages_median).as_secs_f64()
        );
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

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Creates, in the new folder `to`, as many files as `folders` hold, of the same sizes:
/// the floor of writing a site's pages (no rendering, no renames, no syncs). The sizes
/// are read first, untimed.
fn create_like(folders: &[&std::path::Path], to: &std::path::Path) -> Duration {
    let mut sizes = Vec::new();
    for folder in folders {
        for entry in std::fs::read_dir(folder).expect("a page folder") {
            let metadata = entry.expect("an entry").metadata().expect("its metadata");
            sizes.push(metadata.len() as usize);
        }
    }
    let bytes = vec![b'x'; sizes.iter().copied().max().unwrap_or(0)];
    let start = std::time::Instant::now();
    let halves = [to.join("a"), to.join("b")];
    for half in &halves {
        std::fs::create_dir_all(half).expect("a floor folder");
    }
    for (index, size) in sizes.iter().enumerate() {
        let path = halves[index % 2].join(format!("{index}.html"));
        std::fs::write(path, &bytes[..*size]).expect("a floor file");
    }
    start.elapsed()
}
