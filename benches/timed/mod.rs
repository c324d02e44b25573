//! One timed run of a program as a child process: its wall time, and its peak resident
//! memory from `/usr/bin/time` when that is installed. The release `twinfeed` binary and
//! the peers it is compared with are all measured this way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `program ARGS`, which must succeed; returns the wall time and the peak resident
/// memory in MiB. `setup` adds what the command needs (working folder, environment).
pub fn run(
    program: &Path,
    args: &[&std::ffi::OsStr],
    setup: impl FnOnce(&mut Command),
) -> (Duration, Option<f64>) {
    let mut command = if Path::new("/usr/bin/time").exists() {
        let mut command = Command::new("/usr/bin/time");
        command.args(["-f", "maxrss_kib=%M"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args);
    setup(&mut command);
    let start = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{} does not run: {error}", program.display()));
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?} failed: {stderr}",
        program.display()
    );
    let peak = stderr
        .lines()
        .find_map(|line| line.strip_prefix("maxrss_kib="))
        .and_then(|kib| kib.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0);
    (elapsed, peak)
}

/// Runs `twinfeed ARGS --config CONFIG` (the release binary), which must succeed.
pub fn twinfeed(args: &[&str], config: &Path) -> (Duration, Option<f64>) {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push("--config".as_ref());
    all.push(config.as_os_str());
    run(Path::new(env!("CARGO_BIN_EXE_twinfeed")), &all, |_| {})
}
