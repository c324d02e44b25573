//! The JSON Feed 1.1 of one language (https://jsonfeed.org/version/1.1), written with
//! serde: the same ids, links, dates and text as the Atom and RSS feeds.

use serde::Serialize;

use super::{content_html, entry_id, page_url, utc, FeedInput};

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: String,
    url: String,
    title: &'a str,
    content_html: String,
    summary: &'a str,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    language: &'static str,
}

/// The JSON Feed document for one language's feed.
pub fn render(input: &FeedInput) -> anyhow::Result<Vec<u8>> {
    let items = input
        .entries
        .iter()
        .map(|entry| {
            let stored = entry.stored;
            let item = &stored.item;
            JsonItem {
                id: entry_id(&stored.id),
                url: page_url(input.config, &stored.id),
                title: &item.title,
                content_html: content_html(&item.paragraphs),
                summary: &item.summary,
                date_published: utc(item.published).to_rfc3339(),
                date_modified: utc(stored.updated.max(item.published)).to_rfc3339(),
                tags: &item.keywords,
                language: item.tag.as_str(),
            }
        })
        .collect();
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: input.title(),
        home_page_url: input.home_url(),
        feed_url: input.feed_url("feed.json"),
        description: input.description(),
        language: input.variant,
        items,
    };
    let mut bytes = serde_json::to_vec_pretty(&feed)?;
    bytes.push(b'\n');
    Ok(bytes)
}
