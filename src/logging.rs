//! Logging to stderr, one line per event: `TWINFEED_LOG` sets the level (`error`,
//! `warn`, `info`, `debug`; default `info`). Under systemd (when `JOURNAL_STREAM` is set)
//! each line carries its syslog priority as `<N>` so journald files it right; in a
//! terminal the daemon's lines carry a UTC timestamp. Also the report of what one
//! build or update did, shared by `build` and `run`.

use std::io::Write;

use log::Level;

use crate::build::Built;
use crate::config::Config;

/// Installs the logger. `timestamps`: prefix lines with the time (outside journald).
pub fn init(timestamps: bool) {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let env = env_logger::Env::new().filter_or("TWINFEED_LOG", "info");
    let result = env_logger::Builder::from_env(env)
        .format(move |out, record| {
            let message = record.args();
            if journald {
                let priority = match record.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                return writeln!(out, "<{priority}>{message}");
            }
            let level = match record.level() {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                Level::Info => "",
                Level::Debug => "debug: ",
                Level::Trace => "trace: ",
            };
            if timestamps {
                let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                writeln!(out, "{now} twinfeed: {level}{message}")
            } else {
                writeln!(out, "twinfeed: {level}{message}")
            }
        })
        .try_init();
    // A logger already installed (a test harness) is kept.
    drop(result);
}

/// Logs what a build or update did: each file published (at `published_level`), gone,
/// refused, passed over or unreadable with its reason, then one summary line.
pub fn report(config: &Config, built: &Built, what: &str, published_level: Level) {
    let done = &built.reconciled;
    let inbox = config.inbox.display();
    for name in &done.published {
        log::log!(published_level, "{inbox}/{name}: published");
    }
    for name in &done.removed {
        log::info!("{inbox}/{name}: gone from the inbox, its items retracted");
    }
    for (name, reason) in &done.rejected {
        log::warn!("{inbox}/{name}: rejected: {reason}");
    }
    for (name, original) in &done.duplicates {
        log::warn!("{inbox}/{name}: same content as {original}, not published twice");
    }
    for (name, error) in &done.unreadable {
        log::warn!("{inbox}/{name}: cannot read, will retry: {error}");
    }
    for (name, reason) in &done.skipped {
        log::warn!("{inbox}/{name}: skipped: {reason}");
    }
    log::info!(
        "{what}, {}: {} published, {} removed, {} rejected, {} unchanged; {} files written, {} unchanged, {} deleted",
        config.output.display(),
        done.published.len(),
        done.removed.len(),
        done.rejected.len(),
        done.n_unchanged,
        built.written.len() + built.n_pages_written,
        built.n_unchanged,
        built.removed.len(),
    );
}
