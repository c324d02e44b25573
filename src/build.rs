//! `twinfeed build`: reconcile the inbox with the store, then render every feed, index,
//! the home page, OPML and the item pages that need it, and publish what changed;
//! pages of retracted items are deleted. The daemon will run this same pipeline.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::config::ZhVariant;
use crate::publish::{self, Written};
use crate::reconcile::{reconcile, Reconciled};
use crate::render::html::Templates;
use crate::render::{atom, json, page_path, rss, Entry, FeedInput};
use crate::store::{Lang, Store, StoredItem};

/// What one build did.
#[derive(Debug, Default)]
pub struct Built {
    pub reconciled: Reconciled,
    /// Output files written (created or replaced), relative to the output folder.
    pub written: Vec<String>,
    /// Output files whose bytes were already right.
    pub n_unchanged: usize,
    /// Item pages deleted because their item was retracted.
    pub removed: Vec<String>,
}

/// Runs one build at time `now` (Unix seconds, the first-seen time of new files).
pub fn build(config: &Config, now: i64) -> anyhow::Result<Built> {
    let templates = Templates::load(&config.templates)?;
    std::fs::create_dir_all(&config.inbox)
        .with_context(|| format!("cannot create the inbox {}", config.inbox.display()))?;
    let mut store = Store::open(&config.state)?;
    let reconciled = reconcile(config, &mut store, now)?;
    let mut built = Built {
        reconciled,
        ..Built::default()
    };
    let mut outputs = Vec::new();
    for lang in [Lang::Zh, Lang::En] {
        outputs.extend(render_feeds(config, &store, &templates, lang)?);
    }
    outputs.push(("index.html".to_string(), templates.home(config)?));
    outputs.push(("feeds.opml".to_string(), templates.opml(config)?));
    built.publish(config, &outputs)?;
    // One listing of the page folders serves both ways: pages to make, pages to delete.
    let ids = store.item_ids()?;
    let existing = existing_pages(config);
    write_pages(config, &mut store, &templates, &ids, &existing, &mut built)?;
    built.removed = remove_stale_pages(config, &ids, &existing)?;
    Ok(built)
}

/// One language's feed files and index page, and for Chinese the script variants'
/// feeds, with their bytes.
fn render_feeds(
    config: &Config,
    store: &Store,
    templates: &Templates,
    lang: Lang,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let stored = store.newest_items(lang, config.feed_items)?;
    let mut siblings = Vec::with_capacity(stored.len());
    for item in &stored {
        siblings.push(store.sibling_id(&item.file, lang)?);
    }
    let feed = |items: &[StoredItem], variant: &str| -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let entries = items
            .iter()
            .zip(&siblings)
            .map(|(stored, sibling)| Entry {
                stored,
                sibling: sibling.clone(),
            })
            .collect();
        let input = FeedInput {
            config,
            lang,
            variant,
            entries,
        };
        let mut files = vec![
            (format!("{variant}/atom.xml"), atom::render(&input)?),
            (format!("{variant}/rss.xml"), rss::render(&input)?),
            (format!("{variant}/feed.json"), json::render(&input)?),
        ];
        if variant == lang.as_str() {
            files.push((format!("{variant}/index.html"), templates.index(&input)?));
        }
        Ok(files)
    };
    let mut files = feed(&stored, lang.as_str())?;
    if lang == Lang::Zh {
        for variant in &config.zh_variants {
            let converted: Vec<StoredItem> =
                stored.iter().map(|item| convert(item, *variant)).collect();
            files.extend(feed(&converted, variant.tag().as_str())?);
        }
    }
    Ok(files)
}

/// A Chinese item with its text converted to one script: same id and links, new tag.
fn convert(stored: &StoredItem, variant: ZhVariant) -> StoredItem {
    let target = match variant {
        ZhVariant::Hans => zhconv::Variant::ZhHans,
        ZhVariant::Hant => zhconv::Variant::ZhHant,
    };
    let mut converted = stored.clone();
    let item = &mut converted.item;
    item.tag = variant.tag();
    item.title = zhconv::zhconv(&item.title, target);
    item.summary = zhconv::zhconv(&item.summary, target);
    for paragraph in &mut item.paragraphs {
        *paragraph = zhconv::zhconv(paragraph, target);
    }
    converted
}

/// The key under which the store keeps what pages were last rendered with.
const PAGES_STAMP: &str = "pages_rendered_with";

/// How many pages are rendered and written as one batch: enough to make one filesystem
/// sync worth it, few enough that memory stays small however many items there are.
const PAGES_PER_BATCH: usize = 500;

/// Writes the pages that need it: every item of a file published in this pass, every
/// item whose page is missing, and every item when the templates, the settings pages
/// show or the page code changed.
fn write_pages(
    config: &Config,
    store: &mut Store,
    templates: &Templates,
    ids: &[(String, String)],
    existing: &HashSet<String>,
    built: &mut Built,
) -> anyhow::Result<()> {
    let stamp = pages_stamp(config, templates);
    let all = store.setting(PAGES_STAMP)?.as_deref() != Some(stamp.as_str());
    let published: HashSet<&str> = built
        .reconciled
        .published
        .iter()
        .map(String::as_str)
        .collect();
    let mut wanted = Vec::new();
    for (id, file) in ids {
        let relative = page_path(id);
        if all || published.contains(file.as_str()) || !existing.contains(&relative) {
            wanted.push((id, file, relative));
        }
    }
    for batch in wanted.chunks(PAGES_PER_BATCH) {
        let mut pages = Vec::with_capacity(batch.len());
        for (id, file, relative) in batch {
            let Some(stored) = store.item(id)? else {
                continue;
            };
            let sibling = store.sibling_id(file, stored.item.lang)?;
            let page = templates.article(config, &stored, sibling.as_deref())?;
            pages.push((relative.clone(), page));
        }
        built.publish(config, &pages)?;
    }
    store.set_setting(PAGES_STAMP, &stamp)?;
    Ok(())
}

impl Built {
    /// Writes a batch of outputs and counts what changed.
    fn publish(&mut self, config: &Config, outputs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        for (relative, written) in publish::write_all(&config.output, outputs)? {
            match written {
                Written::Unchanged => self.n_unchanged += 1,
                Written::Created | Written::Replaced => self.written.push(relative),
            }
        }
        Ok(())
    }
}

/// Bump when the code that renders pages changes what it writes, so existing pages are
/// made again on the next build.
const PAGE_FORMAT: &str = "2";

/// What every page depends on besides its item: the rendering code, the templates and
/// the site settings.
fn pages_stamp(config: &Config, templates: &Templates) -> String {
    let settings = [
        env!("CARGO_PKG_VERSION"),
        PAGE_FORMAT,
        templates.fingerprint.as_str(),
        config.base_url.as_str(),
        &config.title_zh,
        &config.title_en,
        &config.description_zh,
        &config.description_en,
        config.timezone.name(),
    ];
    blake3::hash(settings.join("\n").as_bytes())
        .to_hex()
        .to_string()
}

/// The item pages now under `zh/` and `en/`, as `zh/name.html` (index pages excluded).
fn existing_pages(config: &Config) -> HashSet<String> {
    let mut pages = HashSet::new();
    for lang in [Lang::Zh, Lang::En] {
        let Ok(entries) = std::fs::read_dir(config.output.join(lang.as_str())) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".html") && name != "index.html" {
                pages.insert(format!("{}/{name}", lang.as_str()));
            }
        }
    }
    pages
}

/// Deletes item pages that no stored item has any more.
fn remove_stale_pages(
    config: &Config,
    ids: &[(String, String)],
    existing: &HashSet<String>,
) -> anyhow::Result<Vec<String>> {
    let wanted: HashSet<String> = ids.iter().map(|(id, _)| page_path(id)).collect();
    let mut removed: Vec<String> = existing.difference(&wanted).cloned().collect();
    removed.sort();
    for relative in &removed {
        publish::remove(&config.output, Path::new(relative))?;
    }
    Ok(removed)
}
