//! The Atom 1.0 feed of one language (RFC 4287), written with `atom_syndication`.
//!
//! The crate has no `xml:lang` on `<entry>`, so each entry's script tag sits on its
//! title, summary and content; the feed's language sits on `<feed>`.

use atom_syndication::{
    Category, Content, Entry, Feed, FixedDateTime, Link, Text, TextType, WriteConfig,
};

use super::{content_html, entry_id, page_url, utc, FeedInput};
use crate::store::Lang;

/// The Atom document for one language's feed.
pub fn render(input: &FeedInput) -> anyhow::Result<Vec<u8>> {
    let feed = Feed {
        title: Text::plain(input.title()),
        id: format!("{}{}", super::TAG_PREFIX, input.variant),
        updated: fixed(input.updated()),
        subtitle: Some(Text::plain(input.description())),
        links: vec![
            link(
                "self",
                &input.feed_url("atom.xml"),
                None,
                Some("application/atom+xml"),
            ),
            link("alternate", &input.home_url(), None, Some("text/html")),
        ],
        lang: Some(input.variant.to_string()),
        entries: input
            .entries
            .iter()
            .map(|entry| render_entry(input, entry))
            .collect(),
        ..Feed::default()
    };
    let mut bytes = Vec::new();
    // Indented for people reading the file; every text node is escaped text, so the
    // indentation never enters an entry's content.
    let layout = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(1),
    };
    feed.write_with_config(&mut bytes, layout)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn render_entry(input: &FeedInput, entry: &super::Entry) -> Entry {
    let stored = entry.stored;
    let item = &stored.item;
    let tag = item.tag.as_str();
    let mut links = vec![link(
        "alternate",
        &page_url(input.config, &stored.id),
        Some(tag),
        Some("text/html"),
    )];
    if let Some(sibling) = &entry.sibling {
        let other = match input.lang {
            Lang::Zh => "en",
            Lang::En => "zh",
        };
        links.push(link(
            "alternate",
            &page_url(input.config, sibling),
            Some(other),
            Some("text/html"),
        ));
    }
    Entry {
        title: text(&item.title, tag),
        id: entry_id(&stored.id),
        updated: fixed(stored.updated.max(item.published)),
        published: Some(fixed(item.published)),
        links,
        categories: item
            .keywords
            .iter()
            .map(|keyword| Category {
                term: keyword.clone(),
                ..Category::default()
            })
            .collect(),
        summary: Some(text(&item.summary, tag)),
        content: Some(Content {
            lang: Some(tag.to_string()),
            value: Some(content_html(&item.paragraphs)),
            content_type: Some("html".to_string()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}

fn text(value: &str, lang: &str) -> Text {
    Text {
        value: value.to_string(),
        lang: Some(lang.to_string()),
        r#type: TextType::Text,
        ..Text::default()
    }
}

fn link(rel: &str, href: &str, hreflang: Option<&str>, mime_type: Option<&str>) -> Link {
    Link {
        href: href.to_string(),
        rel: rel.to_string(),
        hreflang: hreflang.map(str::to_string),
        mime_type: mime_type.map(str::to_string),
        ..Link::default()
    }
}

fn fixed(seconds: i64) -> FixedDateTime {
    utc(seconds).fixed_offset()
}
