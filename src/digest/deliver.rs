//! Handing due deliveries to the mail server (lettre, tokio, rustls), one connection
//! reused across recipients. A delivery is marked sent only once the server accepted
//! it, and that mark is committed before the next recipient: a crash between the
//! server's `250` and the commit is the one window in which a digest can go twice.
//! Temporary failures (no connection, a timeout, 4xx) are retried with backoff until
//! the give-up time; permanent ones (5xx) are recorded with the server's answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Config, Edition, Security, Smtp};
use crate::store::{Delivery, DigestPart, Store};

/// Longest wait between two attempts at one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What one round of deliveries did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub failed: usize,
    pub retrying: usize,
    pub skipped: usize,
}

impl Round {
    pub fn is_empty(&self) -> bool {
        *self == Round::default()
    }
}

/// How a failed attempt is taken.
enum Failure {
    /// The server refused this message for good (5xx): recorded, not retried.
    Permanent(String),
    /// This message may go later (a 4xx answer to it).
    Temporary(String),
    /// Nothing can go now (no connection, TLS, credentials, the server closing):
    /// every due delivery waits.
    Server(String),
}

/// One connection to the configured mail server, made when first needed and made
/// again after a failure (lettre closes a connection on any error answer).
///
/// lettre's own transport writes a message's body and its final `.` in two writes on
/// a socket without `TCP_NODELAY`, so each message waits out the server's delayed ACK
/// (about 40 ms: 25 messages a second). Plain and STARTTLS connections are therefore
/// opened here, with `TCP_NODELAY`, and handed to lettre's SMTP client; implicit TLS
/// (port 465) uses lettre's connector as it is.
pub struct Mailer {
    smtp: Smtp,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    connection: Option<AsyncSmtpConnection>,
}

impl Mailer {
    /// Reads the CA file and the password; an error here is the operator's to fix.
    pub fn new(smtp: &Smtp) -> anyhow::Result<Mailer> {
        let tls = if smtp.security == Security::None {
            None
        } else {
            let mut parameters =
                TlsParameters::builder(smtp.host.trim_matches(['[', ']']).to_string());
            if let Some(file) = &smtp.ca_file {
                let pem = std::fs::read(file).with_context(|| {
                    format!("cannot read digest.smtp.ca_file {}", file.display())
                })?;
                let certificate = Certificate::from_pem(&pem).with_context(|| {
                    format!(
                        "digest.smtp.ca_file {} holds no PEM certificate",
                        file.display()
                    )
                })?;
                parameters = parameters.add_root_certificate(certificate);
            }
            Some(
                parameters
                    .build_rustls()
                    .context("cannot set up TLS for the mail server")?,
            )
        };
        let credentials = if smtp.username.is_empty() {
            None
        } else {
            Some(Credentials::new(
                smtp.username.clone(),
                smtp.password.read()?,
            ))
        };
        Ok(Mailer {
            smtp: smtp.clone(),
            tls,
            credentials,
            connection: None,
        })
    }

    /// Hands one message to the server, within the configured timeout per step.
    async fn send(&mut self, message: &lettre::Message) -> Result<(), Failure> {
        let patience = self.smtp.timeout.saturating_mul(2);
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => tokio::time::timeout(patience, self.connect())
                .await
                .map_err(|_| {
                    Failure::Server(format!(
                        "no answer from {}:{} within {} s",
                        self.smtp.host,
                        self.smtp.port,
                        patience.as_secs()
                    ))
                })??,
        };
        let bytes = message.formatted();
        // A server that goes quiet mid-message is not bounded by lettre: this is.
        let sent =
            tokio::time::timeout(patience, connection.send(message.envelope(), &bytes)).await;
        match sent {
            Err(_) => Err(Failure::Server(format!(
                "the mail server did not finish answering within {} s",
                patience.as_secs()
            ))),
            Ok(Err(error)) => Err(classify(&error)),
            Ok(Ok(_)) => {
                if !connection.has_broken() {
                    self.connection = Some(connection);
                }
                Ok(())
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let hello = ClientId::default();
        let address = (self.smtp.host.trim_matches(['[', ']']), self.smtp.port);
        let refused = |error: &dyn std::fmt::Display| {
            Failure::Server(format!(
                "cannot connect to {}:{}: {error}",
                self.smtp.host, self.smtp.port
            ))
        };
        let mut connection = match (&self.smtp.security, &self.tls) {
            (Security::Tls, Some(tls)) => AsyncSmtpConnection::connect_tokio1(
                address,
                Some(self.smtp.timeout),
                &hello,
                Some(tls.clone()),
                None,
            )
            .await
            .map_err(|error| refused(&error))?,
            _ => {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|error| refused(&error))?;
                stream.set_nodelay(true).map_err(|error| refused(&error))?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                        .await
                        .map_err(|error| refused(&error))?;
                if let (Security::Starttls, Some(tls)) = (&self.smtp.security, &self.tls) {
                    // Refused rather than sent in the clear when the server cannot.
                    connection
                        .starttls(tls.clone(), &hello)
                        .await
                        .map_err(|error| Failure::Server(format!("STARTTLS failed: {error}")))?;
                }
                connection
            }
        };
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|error| Failure::Server(format!("authentication failed: {error}")))?;
        }
        Ok(connection)
    }

    /// Says goodbye to the server, if connected.
    async fn quit(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            let _ = tokio::time::timeout(self.smtp.timeout, connection.quit()).await;
        }
    }
}

/// Delivers every due delivery in the outbox, until done or `stop()` says so (checked
/// between messages). Returns what happened; an error only for the store.
pub async fn deliver_due(
    config: &Config,
    store: &mut Store,
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<Round> {
    let mut round = Round::default();
    let due = store.due_deliveries(Utc::now().timestamp())?;
    if due.is_empty() {
        return Ok(round);
    }
    let mut mailer = match Mailer::new(&config.digest.smtp) {
        Ok(mailer) => mailer,
        Err(error) => {
            let reason = format!("{error:#}");
            log::error!("digest: cannot reach the mail server: {reason}");
            postpone(config, store, &due, &reason, &mut round)?;
            return Ok(round);
        }
    };
    let mut parts: HashMap<(i64, Edition), DigestPart> = HashMap::new();
    for (index, delivery) in due.iter().enumerate() {
        if stop() {
            break;
        }
        let now = Utc::now().timestamp();
        if store.opted_out(&delivery.email)? {
            store.mark_skipped(delivery.digest.id, &delivery.email, now)?;
            round.skipped += 1;
            continue;
        }
        let key = (delivery.digest.id, delivery.edition);
        let part = match parts.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                match store.digest_part(delivery.digest.id, delivery.edition)? {
                    Some(part) => entry.insert(part),
                    None => {
                        fail(
                            store,
                            delivery,
                            "the digest has no such edition",
                            &mut round,
                        )?;
                        continue;
                    }
                }
            }
        };
        let message = match super::message::build(config, delivery, part) {
            Ok(message) => message,
            Err(error) => {
                fail(store, delivery, &format!("{error:#}"), &mut round)?;
                continue;
            }
        };
        let failure = match mailer.send(&message).await {
            Ok(()) => {
                store.mark_sent(delivery.digest.id, &delivery.email, Utc::now().timestamp())?;
                round.sent += 1;
                continue;
            }
            Err(failure) => failure,
        };
        match failure {
            Failure::Permanent(reason) => fail(store, delivery, &reason, &mut round)?,
            Failure::Temporary(reason) => {
                retry(config, store, delivery, &reason, &mut round)?;
            }
            Failure::Server(reason) => {
                log::warn!("digest: the mail server cannot take mail now: {reason}");
                retry(config, store, delivery, &reason, &mut round)?;
                postpone(config, store, &due[index + 1..], &reason, &mut round)?;
                break;
            }
        }
    }
    mailer.quit().await;
    Ok(round)
}

/// Records a delivery that will not be made, and why; logged with the address.
fn fail(
    store: &mut Store,
    delivery: &Delivery,
    reason: &str,
    round: &mut Round,
) -> anyhow::Result<()> {
    log::warn!(
        "digest {}: {}: {reason}",
        delivery.digest.period,
        delivery.email
    );
    store.mark_failed(
        delivery.digest.id,
        &delivery.email,
        reason,
        Utc::now().timestamp(),
    )?;
    round.failed += 1;
    Ok(())
}

/// Schedules the next attempt at a delivery after a temporary failure, or gives it up
/// once its digest is older than `digest.give_up_hours`.
fn retry(
    config: &Config,
    store: &mut Store,
    delivery: &Delivery,
    reason: &str,
    round: &mut Round,
) -> anyhow::Result<()> {
    let now = Utc::now().timestamp();
    let deadline = delivery
        .digest
        .created
        .saturating_add(i64::try_from(config.digest.give_up.as_secs()).unwrap_or(i64::MAX));
    if now >= deadline {
        let attempts = delivery.attempts + 1;
        return fail(
            store,
            delivery,
            &format!("gave up after {attempts} attempts: {reason}"),
            round,
        );
    }
    let delay = backoff(config.digest.retry, delivery.attempts);
    let next = now
        .saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX))
        .min(deadline);
    store.mark_retry(delivery.digest.id, &delivery.email, reason, next)?;
    round.retrying += 1;
    Ok(())
}

/// Retries every delivery in `due` later, the server being unreachable.
fn postpone(
    config: &Config,
    store: &mut Store,
    due: &[Delivery],
    reason: &str,
    round: &mut Round,
) -> anyhow::Result<()> {
    for delivery in due {
        retry(config, store, delivery, reason, round)?;
    }
    Ok(())
}

/// `first`, doubled for each earlier attempt, at most an hour.
fn backoff(first: Duration, attempts: u32) -> Duration {
    first
        .saturating_mul(1u32 << attempts.min(16))
        .min(MAX_BACKOFF)
}

fn classify(error: &lettre::transport::smtp::Error) -> Failure {
    let reason = error.to_string();
    let code = error
        .status()
        .and_then(|code| code.to_string().parse::<u16>().ok());
    match code {
        // Credentials refused or required: the operator's problem, not the recipient's.
        Some(530 | 534 | 535 | 538) => Failure::Server(reason),
        // The server is closing the connection.
        Some(421) => Failure::Server(reason),
        Some(500..=599) => Failure::Permanent(reason),
        Some(_) => Failure::Temporary(reason),
        None => Failure::Server(reason),
    }
}

/// Held while a process delivers, so the daemon and `twinfeed digest send` never hand
/// the same delivery to the server at once.
pub struct DeliveryLock {
    _file: std::fs::File,
}

impl DeliveryLock {
    /// Waits for the lock beside the state database.
    pub fn acquire(state: &Path) -> anyhow::Result<DeliveryLock> {
        use std::os::fd::AsRawFd;
        let path = lock_path(state);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the delivery lock {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if result != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot lock {}", path.display()));
        }
        Ok(DeliveryLock { _file: file })
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".delivery.lock");
    state.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let first = Duration::from_secs(60);
        assert_eq!(backoff(first, 0), Duration::from_secs(60));
        assert_eq!(backoff(first, 1), Duration::from_secs(120));
        assert_eq!(backoff(first, 5), Duration::from_secs(1920));
        assert_eq!(backoff(first, 6), MAX_BACKOFF);
        assert_eq!(backoff(first, 400), MAX_BACKOFF);
    }

    #[test]
    fn lock_sits_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/var/lib/twinfeed/twinfeed.db")),
            Path::new("/var/lib/twinfeed/twinfeed.db.delivery.lock")
        );
    }
}
