//! Composing a digest: the items first seen since the previous digest (not their
//! publication dates: an old article that arrives today is news), the editions the
//! recipients need, each rendered once from the operator's templates.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Edition};
use crate::render::html::{item, ItemContext, Templates};
use crate::store::{DigestPart, Lang, NewDigest, Store, StoredItem};

/// Stands for the recipient's unsubscribe URL in a rendered part; each copy gets its
/// own when it is sent.
pub const UNSUBSCRIBE_MARK: &str = "%%TWINFEED-UNSUBSCRIBE-URL%%";

/// What composing found.
#[derive(Debug)]
pub enum Outcome {
    /// A digest to record, with at least one delivery.
    Composed(NewDigest),
    /// No item is new for any recipient's languages.
    NothingNew,
    /// No recipient is configured, or all opted out.
    NoRecipients,
}

#[derive(Serialize)]
struct DigestContext<'a> {
    subject: &'a str,
    date: &'a str,
    count: usize,
    both: bool,
    sections: Vec<SectionContext<'a>>,
    unsubscribe_url: &'static str,
}

#[derive(Serialize)]
struct SectionContext<'a> {
    lang: &'static str,
    title: &'a str,
    home_url: String,
    items: Vec<ItemContext<'a>>,
    /// New items counted but not listed.
    more: usize,
}

#[derive(Serialize)]
struct SubjectContext<'a> {
    title: &'a str,
    count: usize,
    date: &'a str,
}

/// Composes the digest for `period`, due at `at`, at time `now`; reads the store only.
/// The first digest ever covers the items first seen since the schedule's time
/// before `at`; older items are marked as there before it when it is saved.
pub fn compose(
    config: &Config,
    templates: &Templates,
    store: &Store,
    period: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let (items, baseline) = new_items(config, store, at)?;
    let mut recipients: Vec<(String, Edition)> = Vec::new();
    for recipient in &config.digest.recipients {
        let email = recipient.email.to_string();
        if !store.opted_out(&email)? {
            recipients.push((email, recipient.lang));
        }
    }
    if recipients.is_empty() {
        return Ok(Outcome::NoRecipients);
    }
    let (zh, en) = split(&items);
    let has = |edition: Edition| match edition {
        Edition::Zh => !zh.is_empty(),
        Edition::En => !en.is_empty(),
        Edition::Both => !items.is_empty(),
    };
    recipients.retain(|(_, edition)| has(*edition));
    if recipients.is_empty() {
        return Ok(Outcome::NothingNew);
    }
    let date = date(config, at);
    let mut parts = Vec::new();
    for edition in Edition::ALL {
        if recipients.iter().any(|(_, wanted)| *wanted == edition) {
            parts.push(render(config, templates, edition, &zh, &en, &date)?);
        }
    }
    let created = now.timestamp();
    let key = blake3::hash(format!("{period}\0{created}\0{}", std::process::id()).as_bytes())
        .to_hex()[..16]
        .to_string();
    Ok(Outcome::Composed(NewDigest {
        period: period.to_string(),
        created,
        key,
        n_zh: zh.len(),
        n_en: en.len(),
        parts,
        recipients,
        items: items.iter().map(|stored| stored.id.clone()).collect(),
        baseline,
    }))
}

/// The items a digest due at `at` would carry, newest first, and the baseline time
/// when it would be the first digest.
pub fn new_items(
    config: &Config,
    store: &Store,
    at: DateTime<Utc>,
) -> anyhow::Result<(Vec<StoredItem>, Option<i64>)> {
    let baseline = match store.last_digest()? {
        Some(_) => None,
        None => Some(window_start(config, at)),
    };
    Ok((store.undigested_items(baseline)?, baseline))
}

/// Chinese items and English items.
pub fn split(items: &[StoredItem]) -> (Vec<&StoredItem>, Vec<&StoredItem>) {
    items
        .iter()
        .partition(|stored| stored.item.lang == Lang::Zh)
}

/// The digest's date as people read it, in `site.timezone`.
pub fn date(config: &Config, at: DateTime<Utc>) -> String {
    at.with_timezone(&config.timezone)
        .format("%Y-%m-%d")
        .to_string()
}

/// The start of the first digest's window: the schedule's time before `at`, else a day.
fn window_start(config: &Config, at: DateTime<Utc>) -> i64 {
    let local = at.with_timezone(&config.timezone);
    config
        .digest
        .schedule
        .find_previous_occurrence(&local, false)
        .map_or(at.timestamp() - 86_400, |tick| tick.timestamp())
}

/// One edition: subject, plain text and HTML.
pub fn render(
    config: &Config,
    templates: &Templates,
    edition: Edition,
    zh: &[&StoredItem],
    en: &[&StoredItem],
    date: &str,
) -> anyhow::Result<DigestPart> {
    let wanted: &[(Lang, &[&StoredItem])] = match edition {
        Edition::Zh => &[(Lang::Zh, zh)],
        Edition::En => &[(Lang::En, en)],
        Edition::Both => &[(Lang::Zh, zh), (Lang::En, en)],
    };
    let mut sections = Vec::new();
    let mut subjects = Vec::new();
    for (lang, items) in wanted.iter().filter(|(_, items)| !items.is_empty()) {
        let (title, subject) = match lang {
            Lang::Zh => (&config.title_zh, &config.digest.subject_zh),
            Lang::En => (&config.title_en, &config.digest.subject_en),
        };
        subjects.push(templates.render_line(
            subject,
            &SubjectContext {
                title,
                count: items.len(),
                date,
            },
        )?);
        let listed = items.len().min(config.digest.max_items);
        sections.push(SectionContext {
            lang: lang.as_str(),
            title,
            home_url: config
                .base_url
                .join(&format!("{}/", lang.as_str()))
                .map(String::from)
                .unwrap_or_default(),
            items: items[..listed]
                .iter()
                .map(|stored| item(config, stored))
                .collect(),
            more: items.len() - listed,
        });
    }
    let subject = subjects.join(" / ");
    let context = DigestContext {
        subject: &subject,
        date,
        count: sections.iter().map(|s| s.items.len() + s.more).sum(),
        both: sections.len() > 1,
        sections,
        unsubscribe_url: UNSUBSCRIBE_MARK,
    };
    Ok(DigestPart {
        edition,
        text: templates.render_text("digest.txt", &context)?,
        html: templates.render_text("digest.html", &context)?,
        subject,
    })
}
