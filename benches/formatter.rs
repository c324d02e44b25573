//! Decode + format throughput on one core, side by side with the floor of reading the
//! same files, on a generated corpus of seed-like articles.
//!
//! `cargo bench --bench formatter` (TWINFEED_BENCH_FILES sets the corpus size, default
//! 5000; TWINFEED_BENCH_ROUNDS the rounds, default 7). Prints min / median / max.

mod corpus;
mod settings;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use twinfeed::decode::DEFAULT_MAX_BYTES;
use twinfeed::ingest::ingest_bytes;

fn files_in(folder: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    Ok(paths)
}

/// Reads every file: the floor any tool that looks at the files must pay.
fn read_all(paths: &[PathBuf]) -> std::io::Result<u64> {
    let mut n_bytes = 0;
    for path in paths {
        n_bytes += black_box(std::fs::read(path)?).len() as u64;
    }
    Ok(n_bytes)
}

/// Reads, decodes and formats every file, as `build` will.
fn read_and_format(paths: &[PathBuf]) -> std::io::Result<usize> {
    let mut n_items = 0;
    for path in paths {
        let bytes = std::fs::read(path)?;
        if let Ok(ingested) = ingest_bytes(&bytes, DEFAULT_MAX_BYTES) {
            n_items += usize::from(ingested.article.zh.is_some());
            n_items += usize::from(ingested.article.en.is_some());
            black_box(ingested);
        }
    }
    Ok(n_items)
}

/// Decodes and formats bytes already in memory: the formatter alone.
fn format_in_memory(texts: &[Vec<u8>]) -> usize {
    texts
        .iter()
        .filter_map(|bytes| ingest_bytes(bytes, DEFAULT_MAX_BYTES).ok())
        .map(|ingested| black_box(ingested).article.notes.len())
        .sum()
}

fn time<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let result = work();
    (start.elapsed(), result)
}

fn summary(label: &str, times: &mut [Duration], n_bytes: u64, n_files: usize) {
    times.sort();
    let mb_per_s = |d: Duration| n_bytes as f64 / d.as_secs_f64() / 1e6;
    let files_per_s = |d: Duration| n_files as f64 / d.as_secs_f64();
    let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
    println!(
        "{label:<22} {:>8.1} ms median ({:.1}–{:.1})   {:>8.1} MB/s   {:>9.0} files/s",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        mb_per_s(median),
        files_per_s(median),
    );
}

fn main() -> std::io::Result<()> {
    let n_files = settings::number("TWINFEED_BENCH_FILES", 5000);
    let n_rounds = settings::number("TWINFEED_BENCH_ROUNDS", 7).max(1);
    let folder = tempfile::tempdir()?;
    let n_bytes = corpus::write(folder.path(), n_files)?;
    let paths = files_in(folder.path())?;
    let texts: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    println!(
        "corpus: {n_files} files, {:.1} MB ({:.1} KB/file); {} cores; {n_rounds} rounds, one core",
        n_bytes as f64 / 1e6,
        n_bytes as f64 / n_files as f64 / 1e3,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    // Warm the page cache and the lazily built tables before measuring.
    read_and_format(&paths)?;
    let (mut floor, mut full, mut formatter) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_items = 0;
    for _ in 0..n_rounds {
        floor.push(time(|| read_all(&paths)).0);
        let (elapsed, items) = time(|| read_and_format(&paths));
        n_items = items?;
        full.push(elapsed);
        formatter.push(time(|| format_in_memory(&texts)).0);
    }
    summary("floor: read files", &mut floor, n_bytes, n_files);
    summary("read+decode+format", &mut full, n_bytes, n_files);
    summary("decode+format (memory)", &mut formatter, n_bytes, n_files);
    let ratio = full[full.len() / 2].as_secs_f64() / floor[floor.len() / 2].as_secs_f64();
    println!("read+decode+format / floor = {ratio:.2}x (medians); {n_items} items made");
    Ok(())
}
