//! `twinfeed build`: reconcile the inbox with the store, then render every feed from
//! the stored items and publish what changed. The daemon will run this same pipeline.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::publish::{self, Written};
use crate::reconcile::{reconcile, Reconciled};
use crate::render::{atom, json, rss, Entry, FeedInput};
use crate::store::{Lang, Store};

/// What one build did.
#[derive(Debug, Default)]
pub struct Built {
    pub reconciled: Reconciled,
    /// Output files written (created or replaced), relative to the output folder.
    pub written: Vec<String>,
    /// Output files whose bytes were already right.
    pub n_unchanged: usize,
}

/// Runs one build at time `now` (Unix seconds, the first-seen time of new files).
pub fn build(config: &Config, now: i64) -> anyhow::Result<Built> {
    std::fs::create_dir_all(&config.inbox)
        .with_context(|| format!("cannot create the inbox {}", config.inbox.display()))?;
    let mut store = Store::open(&config.state)?;
    let reconciled = reconcile(config, &mut store, now)?;
    let mut built = Built {
        reconciled,
        ..Built::default()
    };
    for lang in [Lang::Zh, Lang::En] {
        for (relative, bytes) in render_feeds(config, &store, lang)? {
            let written = publish::write_if_changed(&config.output, Path::new(&relative), &bytes)?;
            match written {
                Written::Unchanged => built.n_unchanged += 1,
                Written::Created | Written::Replaced => built.written.push(relative),
            }
        }
    }
    Ok(built)
}

/// One language's feed files and their bytes.
fn render_feeds(
    config: &Config,
    store: &Store,
    lang: Lang,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let stored = store.newest_items(lang, config.feed_items)?;
    let mut entries = Vec::with_capacity(stored.len());
    for item in &stored {
        entries.push(Entry {
            stored: item,
            sibling: store.sibling_id(&item.file, lang)?,
        });
    }
    let input = FeedInput {
        config,
        lang,
        entries,
    };
    let folder = lang.as_str();
    Ok(vec![
        (format!("{folder}/atom.xml"), atom::render(&input)?),
        (format!("{folder}/rss.xml"), rss::render(&input)?),
        (format!("{folder}/feed.json"), json::render(&input)?),
    ])
}
