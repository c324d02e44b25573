//! A full build of the same generated articles by twinfeed and by the tools a user would
//! pick instead, side by side in one run: Hugo (a minimal bilingual site: a page per
//! article and each language's RSS) and a Python feedgen script (the four feeds, no
//! pages), beside the floor of reading the files. Wall time, files/s and peak memory,
//! each as a ratio to twinfeed's.
//!
//! `cargo bench --bench compare` (TWINFEED_BENCH_SIZES, default "1000,10000,100000";
//! TWINFEED_BENCH_ROUNDS, default 3). A peer that is not installed is reported and
//! skipped; `benches/run-all` installs them.

mod corpus;
mod peers;
mod settings;
mod timed;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// The times and peaks of one contender over the rounds.
#[derive(Default)]
struct Runs {
    times: Vec<Duration>,
    peaks: Vec<f64>,
}

impl Runs {
    fn push(&mut self, (time, peak): (Duration, Option<f64>)) {
        self.times.push(time);
        self.peaks.extend(peak);
    }

    fn median(&self) -> f64 {
        let mut times = self.times.clone();
        times.sort();
        times[times.len() / 2].as_secs_f64()
    }

    fn peak(&self) -> Option<f64> {
        self.peaks.iter().copied().reduce(f64::max)
    }

    fn line(&self, label: &str, n_files: usize, ours: &Runs) {
        let mut times = self.times.clone();
        times.sort();
        let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
            (Some(ours), Some(theirs)) => format!("{:.2}x", theirs / ours),
            _ => "n/a".to_string(),
        };
        println!(
            "  {label:<28} {:>8.3} s ({:.3}–{:.3})  {:>7.0} files/s  time {:>6}  peak {:>9}  memory {:>6}",
            self.median(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            n_files as f64 / self.median(),
            ratio(Some(ours.median()), Some(self.median())),
            self.peak().map_or_else(|| "n/a".to_string(), |mib| format!("{mib:.1} MiB")),
            ratio(ours.peak(), self.peak()),
        );
    }
}

fn fresh(folders: &[&Path]) {
    for folder in folders {
        let _ = std::fs::remove_dir_all(folder);
    }
}

fn main() {
    let sizes = settings::sizes("1000,10000,100000");
    let rounds = settings::number("TWINFEED_BENCH_ROUNDS", 3).max(1);
    let hugo = peers::hugo();
    let feedgen = peers::feedgen();
    println!(
        "compare benchmark: {} cores, {rounds} rounds per size; peers: {}, {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        hugo.as_ref()
            .map_or("Hugo not installed (apt install hugo)", |(_, v)| v.as_str()),
        feedgen
            .as_deref()
            .unwrap_or("feedgen not installed (pip install feedgen)"),
    );
    println!("  ratios are the contender's over twinfeed's (time 2.00x = twice as slow)");
    for n_files in sizes {
        let site = tempfile::tempdir().expect("a temporary folder");
        let root = site.path();
        let inbox = root.join("inbox");
        std::fs::create_dir_all(&inbox).expect("the inbox");
        let n_bytes = corpus::write(&inbox, n_files).expect("the corpus");
        let config = root.join("twinfeed.toml");
        std::fs::write(&config, "").expect("the config");
        let hugo_site = root.join("hugo");
        let n_pages = hugo
            .as_ref()
            .map(|_| peers::hugo_site(&inbox, &hugo_site).expect("the Hugo site"));
        println!(
            "{n_files} files, {:.1} MB{}:",
            n_bytes as f64 / 1e6,
            n_pages.map_or(String::new(), |n| format!(
                " (Hugo is handed them pre-split: {n} Markdown pages)"
            ))
        );
        let (mut floor, mut ours, mut theirs_hugo, mut theirs_py) = (
            Runs::default(),
            Runs::default(),
            Runs::default(),
            Runs::default(),
        );
        for _ in 0..rounds {
            floor.push((corpus::read_all(&inbox), None));
            fresh(&[&root.join("state"), &root.join("public")]);
            ours.push(timed::twinfeed(&["build"], &config));
            if let Some((binary, _)) = &hugo {
                let public = hugo_site.join("public");
                fresh(&[&public, &hugo_site.join("resources")]);
                theirs_hugo.push(timed::run(
                    binary,
                    &[
                        OsStr::new("--quiet"),
                        OsStr::new("--source"),
                        hugo_site.as_os_str(),
                    ],
                    |_| {},
                ));
                for lang in ["zh", "en"] {
                    assert!(
                        public.join(lang).join("index.xml").exists(),
                        "Hugo wrote no {lang} RSS"
                    );
                }
            }
            if feedgen.is_some() {
                let out = root.join("feedgen");
                fresh(&[&out]);
                theirs_py.push(timed::run(
                    Path::new("python3"),
                    &[
                        OsStr::new(peers::FEEDGEN_SCRIPT),
                        inbox.as_os_str(),
                        out.as_os_str(),
                    ],
                    |_| {},
                ));
                assert!(out.join("zh/atom.xml").exists(), "feedgen wrote no zh Atom");
            }
        }
        floor.line("floor: read the files", n_files, &ours);
        ours.line("twinfeed build (cold)", n_files, &ours);
        if !theirs_hugo.times.is_empty() {
            theirs_hugo.line("hugo (pages + RSS)", n_files, &ours);
        }
        if !theirs_py.times.is_empty() {
            theirs_py.line("python feedgen (4 feeds)", n_files, &ours);
        }
    }
}
