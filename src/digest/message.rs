//! One recipient's copy of a digest as an email: multipart plain text + HTML, a stable
//! `Message-ID`, `Date` from when the digest was composed, `List-Id`, and one-click
//! `List-Unsubscribe` (RFC 8058) with the recipient's own token.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use super::compose::UNSUBSCRIBE_MARK;
use crate::config::Config;
use crate::store::{Delivery, DigestPart};

/// The path under `site.base_url` that the built-in server answers unsubscribes on.
pub const UNSUBSCRIBE_PATH: &str = "unsubscribe/";

/// The URL that opts a recipient out.
pub fn unsubscribe_url(config: &Config, token: &str) -> String {
    format!("{}{UNSUBSCRIBE_PATH}{token}", config.base_url)
}

/// The `Message-ID`: the same for every attempt at one recipient's copy, so a
/// receiving system can tell a retry from a new digest.
pub fn message_id(config: &Config, delivery: &Delivery) -> String {
    format!(
        "<{}.{}.{}@{}>",
        delivery.digest.key,
        delivery.edition.as_str(),
        &delivery.token[..delivery.token.len().min(16)],
        config.digest.from.email.domain()
    )
}

/// A rendered part's plain text and HTML with the recipient's unsubscribe URL in
/// place (escaped in the HTML).
pub fn bodies(config: &Config, part: &DigestPart, token: &str) -> (String, String) {
    let url = unsubscribe_url(config, token);
    let text = part.text.replace(UNSUBSCRIBE_MARK, &url);
    let html = part.html.replace(
        UNSUBSCRIBE_MARK,
        &html_escape::encode_quoted_attribute(&url),
    );
    (text, html)
}

/// The email for one delivery of a rendered part.
pub fn build(config: &Config, delivery: &Delivery, part: &DigestPart) -> anyhow::Result<Message> {
    let url = unsubscribe_url(config, &delivery.token);
    let (text, html) = bodies(config, part, &delivery.token);
    let to = Mailbox::new(
        None,
        delivery
            .email
            .parse()
            .with_context(|| format!("{:?} is not an email address", delivery.email))?,
    );
    let created = u64::try_from(delivery.digest.created).unwrap_or(0);
    let domain = config.digest.from.email.domain();
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let message = Message::builder()
        .from(config.digest.from.clone())
        .to(to)
        .subject(part.subject.clone())
        .date(UNIX_EPOCH + Duration::from_secs(created))
        .message_id(Some(message_id(config, delivery)))
        .raw_header(header(
            "List-Id",
            format!("twinfeed digest <digest.{domain}>"),
        ))
        .raw_header(header("List-Unsubscribe", format!("<{url}>")))
        .raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ))
        .raw_header(header("Auto-Submitted", "auto-generated".to_string()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .context("cannot build the digest email")?;
    Ok(message)
}
