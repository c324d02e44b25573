//! `twinfeed build`: reconcile the inbox with the store, then render every feed, index,
//! the home page, OPML and the item pages that need it, and publish what changed;
//! pages of retracted items are deleted. The daemon will run this same pipeline.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::config::ZhVariant;
use crate::publish::{self, Written};
use crate::reconcile::{reconcile, reconcile_names, Reconciled};
use crate::render::html::Templates;
use crate::render::{atom, json, page_path, rss, Entry, FeedInput};
use crate::store::{Lang, Store, StoredItem};

/// What one build or update did.
#[derive(Debug, Default)]
pub struct Built {
    pub reconciled: Reconciled,
    /// Output files written (created or replaced), relative to the output folder: the
    /// feeds, indexes and the pages written with them. Pages written in bulk (more than
    /// a batch) are only counted, in `n_pages_written`: a cold build of a large archive
    /// need not hold every page's name.
    pub written: Vec<String>,
    pub n_pages_written: usize,
    /// Output files whose bytes were already right.
    pub n_unchanged: usize,
    /// Item pages deleted because their item was retracted.
    pub removed: Vec<String>,
}

impl Built {
    /// True if any output file was written or deleted.
    pub fn changed_outputs(&self) -> bool {
        !self.written.is_empty() || self.n_pages_written > 0 || !self.removed.is_empty()
    }
}

/// Creates the inbox named in `config` if it is missing (only at start and on reload:
/// an inbox that goes missing later is an error, not an empty inbox).
pub fn create_inbox(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.inbox)
        .with_context(|| format!("cannot create the inbox {}", config.inbox.display()))
}

/// Runs one full build at time `now` (Unix seconds, the first-seen time of new files).
pub fn build(config: &Config, now: i64) -> anyhow::Result<Built> {
    Site::open(config.clone())?.build(now)
}

/// The configuration, templates and open store that builds and updates work with: the
/// one-shot `build` opens it once, the daemon keeps it for its whole life.
pub struct Site {
    config: Config,
    templates: Templates,
    store: Store,
}

impl Site {
    /// Loads the templates, creates the inbox if needed and opens the store. Temporary
    /// files an interrupted run left in the output folder and its feed-only folders are
    /// removed (the page folders' are, when a build lists them).
    pub fn open(config: Config) -> anyhow::Result<Site> {
        let templates = Templates::load(&config.templates)?;
        create_inbox(&config)?;
        let store = Store::open(&config.state)?;
        let feed_folders = config.zh_variants.iter().map(|variant| variant.tag());
        let n_leftovers: usize = std::iter::once(config.output.clone())
            .chain(feed_folders.map(|tag| config.output.join(tag.as_str())))
            .map(|folder| publish::remove_leftovers(&folder))
            .sum();
        note_leftovers(n_leftovers);
        Ok(Site {
            config,
            templates,
            store,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reconciles the whole inbox, makes the item pages that need it, renders every
    /// feed, index, the home page and OPML, and deletes the pages of retracted items.
    pub fn build(&mut self, now: i64) -> anyhow::Result<Built> {
        let started = std::time::Instant::now();
        let reconciled = reconcile(&self.config, &mut self.store, now)?;
        log::debug!(
            "reconciled the inbox in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        let mut built = Built {
            reconciled,
            ..Built::default()
        };
        let stamp = pages_stamp(&self.config, &self.templates);
        let all = self.store.setting(PAGES_STAMP)?.as_deref() != Some(stamp.as_str());
        // The page folders are listed (and every item id read) only when a page may be
        // missing or stale: something changed, or a page folder is not as the last
        // build left it. A no-change build of a large archive is then a scan of the inbox.
        let folders = page_folders_stamp(&self.config);
        let settled = !all
            && !self.store.any_page_pending()?
            && !built.reconciled.items_changed()
            && self.store.setting(PAGE_FOLDERS)?.as_deref() == Some(folders.as_str());
        // One listing of the page folders serves both ways: each item's page found in
        // it is taken out, and what is left at the end is stale.
        let mut stale = if settled {
            HashSet::new()
        } else {
            existing_pages(&self.config)
        };
        if !settled {
            // The items are read from the store a batch at a time, never all at once.
            let mut after = String::new();
            let next = |store: &Store| -> anyhow::Result<Option<Vec<(String, String)>>> {
                loop {
                    let ids = store.item_ids_after(&after, PAGES_PER_BATCH)?;
                    let Some((last, _, _)) = ids.last() else {
                        return Ok(None);
                    };
                    after.clone_from(last);
                    let wanted: Vec<(String, String)> = ids
                        .into_iter()
                        .filter(|(id, _, written)| {
                            let on_disk = stale.remove(&page_path(id));
                            all || !written || !on_disk
                        })
                        .map(|(id, file, _)| (id, file))
                        .collect();
                    if !wanted.is_empty() {
                        return Ok(Some(wanted));
                    }
                }
            };
            let started = std::time::Instant::now();
            self.write_pages(next, &mut built)?;
            log::debug!(
                "wrote {} pages in {:.3} s",
                built.n_pages_written,
                started.elapsed().as_secs_f64()
            );
        }
        if all {
            self.store.set_setting(PAGES_STAMP, &stamp)?;
        }
        // Feeds after pages, and stale pages deleted after feeds: a link in a feed
        // always leads to a page.
        let mut outputs = Vec::new();
        for lang in [Lang::Zh, Lang::En] {
            outputs.extend(self.render_feeds(lang)?);
        }
        outputs.push(("index.html".to_string(), self.templates.home(&self.config)?));
        outputs.push(("feeds.opml".to_string(), self.templates.opml(&self.config)?));
        built.publish(&self.config, &outputs)?;
        let mut stale: Vec<String> = stale.into_iter().collect();
        stale.sort();
        built.remove_pages(&self.config, stale)?;
        let folders_now = page_folders_stamp(&self.config);
        if self.store.setting(PAGE_FOLDERS)?.as_deref() != Some(folders_now.as_str()) {
            self.store.set_setting(PAGE_FOLDERS, &folders_now)?;
        }
        self.note_publish(&built, now)?;
        Ok(built)
    }

    /// Brings the outputs up to date after the inbox files of these names may have
    /// changed (as the watcher reports them): only those files are looked at, and only
    /// the feeds of languages whose items changed and the pages of those files are
    /// rendered. Falls back to a full build when the pages are stale as a whole.
    pub fn update(&mut self, names: &[String], now: i64) -> anyhow::Result<Built> {
        let stamp = pages_stamp(&self.config, &self.templates);
        if self.store.setting(PAGES_STAMP)?.as_deref() != Some(stamp.as_str()) {
            return self.build(now);
        }
        let mut before = HashSet::new();
        for name in names {
            before.extend(self.store.items_of_file(name)?);
        }
        let reconciled = reconcile_names(&self.config, &mut self.store, names, now)?;
        // Pages to write are those not written since their item changed (normally the
        // touched files' items); feeds to render are those of languages that gained,
        // lost or changed an item.
        let wanted = self.store.pages_pending()?;
        let pending: HashSet<&String> = wanted.iter().map(|(id, _)| id).collect();
        let mut after = HashSet::new();
        let mut langs = HashSet::new();
        for name in names.iter().chain(&reconciled.published) {
            for (id, lang) in self.store.items_of_file(name)? {
                if pending.contains(&id) {
                    langs.insert(lang);
                }
                after.insert((id, lang));
            }
        }
        langs.extend(before.symmetric_difference(&after).map(|(_, lang)| *lang));
        let mut built = Built {
            reconciled,
            ..Built::default()
        };
        let mut outputs = Vec::new();
        for lang in [Lang::Zh, Lang::En]
            .into_iter()
            .filter(|lang| langs.contains(lang))
        {
            outputs.extend(self.render_feeds(lang)?);
        }
        // Pages first, feeds next, stale pages last: a link in a feed always resolves.
        // A few pages go out with the feeds in one batch, renamed in that order.
        if wanted.len() <= PAGES_WITH_FEEDS {
            let mut batch = self.render_pages(&wanted)?;
            batch.extend(outputs);
            built.publish(&self.config, &batch)?;
            self.mark_written(&wanted)?;
        } else {
            let mut batches = wanted.chunks(PAGES_PER_BATCH);
            self.write_pages(|_| Ok(batches.next().map(<[_]>::to_vec)), &mut built)?;
            built.publish(&self.config, &outputs)?;
        }
        let mut stale: Vec<String> = before
            .difference(&after)
            .map(|(id, _)| page_path(id))
            .collect();
        stale.sort();
        built.remove_pages(&self.config, stale)?;
        self.note_publish(&built, now)?;
        Ok(built)
    }

    /// Takes a new configuration and its templates; the store is reopened if its path
    /// changed. Nothing is changed if any of it fails. The caller builds afterwards.
    pub fn reload(&mut self, config: Config) -> anyhow::Result<()> {
        let templates = Templates::load(&config.templates)?;
        create_inbox(&config)?;
        if config.state != self.config.state {
            self.store = Store::open(&config.state)?;
        }
        self.config = config;
        self.templates = templates;
        Ok(())
    }

    /// The store, for reading what it holds.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records when outputs last changed, for `twinfeed status`.
    fn note_publish(&mut self, built: &Built, now: i64) -> anyhow::Result<()> {
        if built.changed_outputs() {
            self.store.set_setting(LAST_PUBLISH, &now.to_string())?;
        }
        Ok(())
    }
    /// One language's feed files and index page, and for Chinese the script variants'
    /// feeds, with their bytes.
    fn render_feeds(&self, lang: Lang) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let (config, store, templates) = (&self.config, &self.store, &self.templates);
        let stored = store.newest_items(lang, config.feed_items)?;
        let mut siblings = Vec::with_capacity(stored.len());
        for item in &stored {
            siblings.push(store.sibling_id(&item.file, lang)?);
        }
        let feed =
            |items: &[StoredItem], variant: &str| -> anyhow::Result<Vec<(String, Vec<u8>)>> {
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

    /// Renders and writes the pages of the `(id, file)` items that `next` hands out a
    /// batch at a time, as a pipeline over three threads: this one reads batch k + 2
    /// from the store while a second renders batch k + 1 and a third writes batch k;
    /// this one records a batch's pages as written once they are on disk.
    fn write_pages(
        &mut self,
        mut next: impl FnMut(&Store) -> anyhow::Result<Option<Vec<(String, String)>>>,
        built: &mut Built,
    ) -> anyhow::Result<()> {
        type Read = Vec<(StoredItem, Option<String>)>;
        type Pages = Vec<(String, Vec<u8>)>;
        let (config, templates, store) = (&self.config, &self.templates, &mut self.store);
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let (to_render, rendering) = std::sync::mpsc::sync_channel::<Read>(1);
            let (to_write, writing) = std::sync::mpsc::sync_channel::<anyhow::Result<Pages>>(1);
            let (to_mark, marking) = std::sync::mpsc::channel();
            scope.spawn(move || {
                for items in rendering {
                    let pages = render_items(config, templates, &items);
                    if to_write.send(pages).is_err() {
                        break;
                    }
                }
            });
            scope.spawn(move || {
                for pages in writing {
                    let written =
                        pages.and_then(|pages| publish::write_all(&config.output, &pages));
                    let failed = written.is_err();
                    if to_mark.send(written).is_err() || failed {
                        break;
                    }
                }
            });
            // The ids of the batches sent and not yet marked, oldest first.
            let mut in_flight = std::collections::VecDeque::new();
            let mut mark = |written: anyhow::Result<Vec<(String, Written)>>,
                            in_flight: &mut std::collections::VecDeque<Vec<String>>,
                            store: &mut Store|
             -> anyhow::Result<()> {
                built.count_pages(written?);
                let ids = in_flight.pop_front().context("a page batch went missing")?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                store.mark_pages_written(&ids)
            };
            while let Some(batch) = next(store)? {
                let items = read_items(store, &batch)?;
                in_flight.push_back(batch.into_iter().map(|(id, _)| id).collect());
                if to_render.send(items).is_err() {
                    break; // writing failed; its error is below
                }
                while let Ok(written) = marking.try_recv() {
                    mark(written, &mut in_flight, store)?;
                }
            }
            drop(to_render);
            for written in marking {
                mark(written, &mut in_flight, store)?;
            }
            anyhow::ensure!(in_flight.is_empty(), "a page thread stopped");
            Ok(())
        })
    }

    /// The pages of these `(id, file)` items, with their paths.
    fn render_pages(&self, items: &[(String, String)]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        render_items(
            &self.config,
            &self.templates,
            &read_items(&self.store, items)?,
        )
    }

    /// Records that these items' pages are on disk.
    fn mark_written(&mut self, items: &[(String, String)]) -> anyhow::Result<()> {
        let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
        self.store.mark_pages_written(&ids)
    }
}

/// The stored items of these `(id, file)` pairs with their siblings' ids: what a page
/// needs from the store. Items gone since are left out.
fn read_items(
    store: &Store,
    items: &[(String, String)],
) -> anyhow::Result<Vec<(StoredItem, Option<String>)>> {
    let mut read = Vec::with_capacity(items.len());
    for (id, file) in items {
        if let Some(stored) = store.item(id)? {
            let sibling = store.sibling_id(file, stored.item.lang)?;
            read.push((stored, sibling));
        }
    }
    Ok(read)
}

/// The pages of these items, with their paths.
fn render_items(
    config: &Config,
    templates: &Templates,
    items: &[(StoredItem, Option<String>)],
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    items
        .iter()
        .map(|(stored, sibling)| {
            let page = templates.article(config, stored, sibling.as_deref())?;
            Ok((page_path(&stored.id), page))
        })
        .collect()
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
/// The page folders' modification times after the last build (`page_folders_stamp`).
const PAGE_FOLDERS: &str = "page_folders";

/// The key under which the store keeps when outputs last changed (Unix seconds).
pub const LAST_PUBLISH: &str = "last_publish";

/// How many pages are rendered and written as one batch: enough to make one filesystem
/// sync worth it, few enough that memory stays small however many items there are.
const PAGES_PER_BATCH: usize = 250;

/// Up to this many pages are written in the same batch as the feeds (an update of a few
/// files), saving a second round of syncs.
const PAGES_WITH_FEEDS: usize = 16;

impl Built {
    /// Writes a batch of outputs and counts what changed.
    fn publish(&mut self, config: &Config, outputs: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        self.count(publish::write_all(&config.output, outputs)?);
        Ok(())
    }

    /// Counts what writing a batch of pages did, without keeping their names.
    fn count_pages(&mut self, written: Vec<(String, Written)>) {
        let n_unchanged = written
            .iter()
            .filter(|(_, written)| *written == Written::Unchanged)
            .count();
        self.n_unchanged += n_unchanged;
        self.n_pages_written += written.len() - n_unchanged;
    }

    /// Counts what writing a batch of outputs did.
    fn count(&mut self, written: Vec<(String, Written)>) {
        for (relative, written) in written {
            match written {
                Written::Unchanged => self.n_unchanged += 1,
                Written::Created | Written::Replaced => self.written.push(relative),
            }
        }
    }

    /// Deletes these item pages.
    fn remove_pages(&mut self, config: &Config, pages: Vec<String>) -> anyhow::Result<()> {
        for relative in &pages {
            if publish::remove(&config.output, Path::new(relative))? {
                self.removed.push(relative.clone());
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
/// The page folders' modification times, which move whenever a page (or a feed) is
/// added, removed or replaced in them.
fn page_folders_stamp(config: &Config) -> String {
    [Lang::Zh, Lang::En]
        .iter()
        .map(|lang| {
            std::fs::metadata(config.output.join(lang.as_str())).map_or_else(
                |_| "none".to_string(),
                |m| crate::inbox::mtime_ns(&m).to_string(),
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The item pages on disk. Temporary files left there by a writer that was killed are
/// removed on the way (a folder they were left in has a new mtime, so it is listed).
fn existing_pages(config: &Config) -> HashSet<String> {
    let mut pages = HashSet::new();
    let mut n_leftovers = 0;
    for lang in [Lang::Zh, Lang::En] {
        let folder = config.output.join(lang.as_str());
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".html") && name != "index.html" {
                pages.insert(format!("{}/{name}", lang.as_str()));
            } else if publish::is_leftover(&name) && std::fs::remove_file(entry.path()).is_ok() {
                n_leftovers += 1;
            }
        }
    }
    note_leftovers(n_leftovers);
    pages
}

/// Logs how many leftover temporary files were removed, if any.
fn note_leftovers(n_leftovers: usize) {
    if n_leftovers > 0 {
        log::info!("removed {n_leftovers} temporary files left by an interrupted run");
    }
}
