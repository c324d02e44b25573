//! The RSS 2.0 feed of one language, written with the `rss` crate: `atom:link
//! rel="self"`, a `guid` that is the entry's tag URI (not a permalink), RFC 822 dates in
//! UTC, full text in `content:encoded` (the crate splits CDATA at `]]>`), categories.

use rss::extension::atom::{AtomExtension, Link};
use rss::{Category, Channel, Guid, Item};

use super::{content_html, entry_id, page_url, utc, FeedInput};

/// The RSS document for one language's feed.
pub fn render(input: &FeedInput) -> anyhow::Result<Vec<u8>> {
    let items = input
        .entries
        .iter()
        .map(|entry| {
            let stored = entry.stored;
            let item = &stored.item;
            Item {
                title: Some(item.title.clone()),
                link: Some(page_url(input.config, &stored.id)),
                description: Some(item.summary.clone()),
                guid: Some(Guid {
                    value: entry_id(&stored.id),
                    permalink: false,
                }),
                pub_date: Some(utc(item.published).to_rfc2822()),
                categories: item
                    .keywords
                    .iter()
                    .map(|keyword| Category {
                        name: keyword.clone(),
                        domain: None,
                    })
                    .collect(),
                content: Some(content_html(&item.paragraphs)),
                ..Item::default()
            }
        })
        .collect();
    let updated = utc(input.updated()).to_rfc2822();
    let channel = Channel {
        title: input.title().to_string(),
        link: input.home_url(),
        description: input.description().to_string(),
        language: Some(input.variant.to_string()),
        last_build_date: Some(updated.clone()),
        pub_date: Some(updated),
        generator: Some("twinfeed".to_string()),
        atom_ext: Some(AtomExtension {
            links: vec![Link {
                href: input.feed_url("rss.xml"),
                rel: "self".to_string(),
                mime_type: Some("application/rss+xml".to_string()),
                ..Link::default()
            }],
        }),
        items,
        ..Channel::default()
    };
    // Indented for people reading the file, as the Atom feed is.
    let mut bytes = channel.pretty_write_to(Vec::new(), b' ', 1)?;
    bytes.push(b'\n');
    Ok(bytes)
}
