//! The digest inside the daemon: a thread of its own that composes a digest at each
//! scheduled time (one missed while the daemon was down is composed when it starts),
//! delivers what is due, and sleeps until the next time or the next retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::compose::{compose, Outcome};
use super::deliver::{deliver_due, DeliveryLock, Round};
use crate::config::Config;
use crate::render::html::Templates;
use crate::store::Store;

/// The last scheduled time handled, so a restart neither repeats nor skips one.
const LAST_TICK: &str = "digest.last_tick";
/// Longest sleep, so a changed clock or time zone is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What the daemon tells the worker.
pub enum Control {
    /// A new configuration (SIGHUP), already validated.
    Reload(Box<Config>),
    /// Wake up and look at the stop flag.
    Wake,
}

/// Composes and records a digest for `period`; logs what happened. Returns the
/// digest's id when one was recorded.
pub fn compose_and_save(
    config: &Config,
    templates: &Templates,
    store: &mut Store,
    period: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    if store.has_digest(period)? {
        log::info!("digest {period}: already composed");
        return Ok(None);
    }
    match compose(config, templates, store, period, at, Utc::now())? {
        Outcome::NoRecipients => {
            log::info!("digest {period}: no recipients (none configured, or all opted out)");
            Ok(None)
        }
        Outcome::NothingNew => {
            log::info!("digest {period}: nothing new since the last digest, no email");
            Ok(None)
        }
        Outcome::Composed(digest) => {
            let id = store.save_digest(&digest)?;
            if id.is_some() {
                log::info!(
                    "digest {period}: composed, {} new zh and {} new en items, for {} recipients",
                    digest.n_zh,
                    digest.n_en,
                    digest.recipients.len()
                );
            }
            Ok(id)
        }
    }
}

/// Logs a round's outcome when it did anything.
pub fn log_round(round: &Round) {
    if !round.is_empty() {
        log::info!(
            "digest: {} sent, {} failed, {} to retry, {} skipped (opted out)",
            round.sent,
            round.failed,
            round.retrying,
            round.skipped
        );
    }
}

/// Runs until `stop` is set (and a message wakes it). Errors are logged and retried.
pub fn run(mut config: Config, control: Receiver<Control>, stop: Arc<AtomicBool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("digest: cannot start: {error}");
            return;
        }
    };
    let mut failures: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        let sleep = if config.digest.enabled {
            match turn(&config, &runtime, &stop) {
                Ok(sleep) => {
                    failures = 0;
                    sleep
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_secs(5u64 << failures.min(6));
                    log::error!("digest: {error:#}; trying again in {} s", wait.as_secs());
                    wait
                }
            }
        } else {
            MAX_SLEEP
        };
        match control.recv_timeout(sleep) {
            Ok(Control::Reload(new)) => config = *new,
            Ok(Control::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One pass: compose if a scheduled time has come, deliver what is due. Returns how
/// long to sleep.
fn turn(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    stop: &AtomicBool,
) -> anyhow::Result<Duration> {
    let mut store = Store::open(&config.state)?;
    let now = Utc::now();
    if let Some(tick) = super::latest_tick(config, now) {
        let period = super::scheduled_period(tick);
        match store.setting(LAST_TICK)? {
            // The first start with the digest on: from the next time on.
            None => store.set_setting(LAST_TICK, &period)?,
            Some(last) if last < period => {
                let templates = Templates::load(&config.templates)?;
                compose_and_save(config, &templates, &mut store, &period, tick)?;
                store.set_setting(LAST_TICK, &period)?;
            }
            Some(_) => {}
        }
    }
    let round = {
        let _lock = DeliveryLock::acquire(&config.state)?;
        runtime.block_on(deliver_due(config, &mut store, &|| {
            stop.load(Ordering::SeqCst)
        }))?
    };
    log_round(&round);
    let now = Utc::now();
    let mut wake = now + chrono::Duration::from_std(MAX_SLEEP)?;
    if let Some(tick) = super::next_tick(config, now) {
        wake = wake.min(tick);
    }
    if let Some(due) = store.next_delivery_time()? {
        if let Some(due) = DateTime::from_timestamp(due, 0) {
            wake = wake.min(due);
        }
    }
    // A little after the time, so the schedule's second has begun.
    Ok((wake - now).to_std().unwrap_or_default() + Duration::from_millis(20))
}
