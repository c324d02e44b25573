//! Config and stored items → the bytes of every output: a pure function, with no I/O and
//! no clock, so the same items always give the same bytes. Ids and paths are derived
//! here from the stored item id alone, never from the base URL.

pub mod atom;
pub mod html;
pub mod json;
pub mod rss;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::Config;
use crate::store::{Lang, StoredItem};

/// The fixed authority and date of every tag URI twinfeed mints (RFC 4151). Changing
/// them would change every id readers have seen: never change them.
const TAG_PREFIX: &str = "tag:twinfeed,2026:";

/// One feed's worth of items, with what each needs from the other language.
pub struct FeedInput<'a> {
    pub config: &'a Config,
    pub lang: Lang,
    /// The feed's folder under the output folder and its language tag: `zh`, `en`, or
    /// for a script variant `zh-Hans` or `zh-Hant`.
    pub variant: &'a str,
    /// Newest first.
    pub entries: Vec<Entry<'a>>,
}

/// A stored item and the id of its sibling in the other language, if any.
pub struct Entry<'a> {
    pub stored: &'a StoredItem,
    pub sibling: Option<String>,
}

impl<'a> FeedInput<'a> {
    pub fn title(&self) -> &'a str {
        match self.lang {
            Lang::Zh => &self.config.title_zh,
            Lang::En => &self.config.title_en,
        }
    }

    pub fn description(&self) -> &'a str {
        match self.lang {
            Lang::Zh => &self.config.description_zh,
            Lang::En => &self.config.description_en,
        }
    }

    /// The newest `updated` time among the entries: the feed's own updated time, from
    /// the items and never from the clock. Zero (1970) for an empty feed.
    pub fn updated(&self) -> i64 {
        self.entries
            .iter()
            .map(|entry| entry.stored.updated.max(entry.stored.item.published))
            .max()
            .unwrap_or(0)
    }

    /// The address of one of this language's feed files, e.g. `atom.xml`.
    pub fn feed_url(&self, file: &str) -> String {
        join(self.config, &format!("{}/{file}", self.variant))
    }

    /// The address of this language's index page (a variant shares its language's).
    pub fn home_url(&self) -> String {
        join(self.config, &format!("{}/", self.lang.as_str()))
    }
}

/// The tag URI of a stored item id: `tag:twinfeed,2026:000_fb95044e7f3821d4/zh`.
pub fn entry_id(id: &str) -> String {
    format!("{TAG_PREFIX}{}", encode_path(id))
}

/// The path of an item's page under the output folder: `zh/000_fb95044e7f3821d4.html`.
pub fn page_path(id: &str) -> String {
    let (stem, lang) = id.rsplit_once('/').unwrap_or((id, "en"));
    format!("{lang}/{stem}.html")
}

/// The public address of an item's page.
pub fn page_url(config: &Config, id: &str) -> String {
    join(config, &encode_path(&page_path(id)))
}

/// `base_url` joined with an already-encoded relative path.
fn join(config: &Config, relative: &str) -> String {
    config
        .base_url
        .join(relative)
        .map_or_else(|_| format!("{}{relative}", config.base_url), Url::into)
}

/// Percent-encodes each segment of a slash-separated path, keeping the slashes.
fn encode_path(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    path.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, KEEP).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// An item's paragraphs as HTML: one escaped `<p>` each.
pub fn content_html(paragraphs: &[String]) -> String {
    let mut html = String::new();
    for paragraph in paragraphs {
        html.push_str("<p>");
        html.push_str(&html_escape::encode_text(paragraph));
        html.push_str("</p>\n");
    }
    html
}

/// A Unix time as a UTC date-time; out-of-range times clamp to the epoch.
pub fn utc(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths_come_from_the_item_id() {
        assert_eq!(
            entry_id("000_fb95044e7f3821d4/zh"),
            "tag:twinfeed,2026:000_fb95044e7f3821d4/zh"
        );
        assert_eq!(
            entry_id("新闻 一/en"),
            "tag:twinfeed,2026:%E6%96%B0%E9%97%BB%20%E4%B8%80/en"
        );
        assert_eq!(
            page_path("000_fb95044e7f3821d4/zh"),
            "zh/000_fb95044e7f3821d4.html"
        );
        assert_eq!(page_path("a.md/en"), "en/a.md.html");
        let config = Config::defaults(std::path::Path::new("/srv"));
        assert_eq!(
            page_url(&config, "a b/zh"),
            "http://127.0.0.1:8080/zh/a%20b.html"
        );
    }

    #[test]
    fn content_is_escaped() {
        let html = content_html(&["a <script> & b".into(), "二".into()]);
        assert_eq!(html, "<p>a &lt;script&gt; &amp; b</p>\n<p>二</p>\n");
    }
}
