//! One run of the release `twinfeed` binary as a child process: its wall time, and its
//! peak resident memory from `/usr/bin/time` when that is installed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `twinfeed ARGS --config CONFIG`, which must succeed; returns the wall time and
/// the peak resident memory in MiB.
pub fn twinfeed(args: &[&str], config: &Path) -> (Duration, Option<f64>) {
    let binary = env!("CARGO_BIN_EXE_twinfeed");
    let mut command = if Path::new("/usr/bin/time").exists() {
        let mut command = Command::new("/usr/bin/time");
        command.args(["-f", "maxrss_kib=%M", binary]);
        command
    } else {
        Command::new(binary)
    };
    command.args(args).arg("--config").arg(config);
    let start = Instant::now();
    let output = command.output().expect("the twinfeed binary runs");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "twinfeed {args:?} failed: {stderr}"
    );
    let peak = stderr
        .lines()
        .find_map(|line| line.strip_prefix("maxrss_kib="))
        .and_then(|kib| kib.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0);
    (elapsed, peak)
}
