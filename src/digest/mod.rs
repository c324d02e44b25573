//! The digest newsletter: which items are news ([`compose`]), the email each recipient
//! gets ([`message`]), handing them to the mail server with retries ([`deliver`]), and
//! the schedule that runs inside the daemon ([`worker`]).
//!
//! The outbox lives in the state database: a digest is composed once, in one
//! transaction with its deliveries, then each delivery is a row that moves from
//! pending to sent, failed or skipped.

pub mod compose;
pub mod deliver;
pub mod message;
pub mod worker;

use chrono::{DateTime, Utc};

use crate::config::Config;

/// The schedule's latest time at or before `now`.
pub fn latest_tick(config: &Config, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&config.timezone);
    config
        .digest
        .schedule
        .find_previous_occurrence(&local, true)
        .ok()
        .map(|tick| tick.with_timezone(&Utc))
}

/// The schedule's first time after `now`.
pub fn next_tick(config: &Config, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&config.timezone);
    config
        .digest
        .schedule
        .find_next_occurrence(&local, false)
        .ok()
        .map(|tick| tick.with_timezone(&Utc))
}

/// The period key of a scheduled digest: its time, in UTC.
pub fn scheduled_period(tick: DateTime<Utc>) -> String {
    tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The period key of a digest sent by hand.
pub fn manual_period(now: DateTime<Utc>) -> String {
    format!(
        "manual {}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}
