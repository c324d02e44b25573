//! Bringing the store in line with the inbox: files that are new or changed are read,
//! hashed and ingested; files that are gone are retracted; files whose size and mtime
//! did not change are not even read. The stored content hash, not the metadata, decides
//! whether a file really changed. Rendering is not done here.

use std::collections::HashSet;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::config::Config;
use crate::decode::Rejection;
use crate::formatter::{Article, Item};
use crate::inbox::{self, Entry, InboxFile};
use crate::ingest;
use crate::store::{FileRecord, Lang, NewItem, Store};

/// What one reconciliation did, file by file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Files whose items were created or replaced.
    pub published: Vec<String>,
    /// Files gone from the inbox, whose items were retracted.
    pub removed: Vec<String>,
    /// Files refused, with the reason.
    pub rejected: Vec<(String, String)>,
    /// Files with the same content as another file, which stands for them.
    pub duplicates: Vec<(String, String)>,
    /// Files that could not be read now (and will be tried again), with the error.
    pub unreadable: Vec<(String, String)>,
    /// Inbox entries passed over (links, pipes, folders), with the reason.
    pub skipped: Vec<(String, &'static str)>,
    /// Files known and unchanged.
    pub n_unchanged: usize,
}

impl Reconciled {
    /// True if any item was published or retracted, so the outputs need rendering.
    pub fn items_changed(&self) -> bool {
        !self.published.is_empty() || !self.removed.is_empty()
    }

    /// True if there is nothing to tell: every file looked at was unchanged.
    pub fn is_quiet(&self) -> bool {
        !self.items_changed()
            && self.rejected.is_empty()
            && self.duplicates.is_empty()
            && self.unreadable.is_empty()
            && self.skipped.is_empty()
    }
}

/// Reconciles the store with the inbox named in `config`; `now` is Unix seconds, used
/// as the first-seen time of new files.
pub fn reconcile(config: &Config, store: &mut Store, now: i64) -> anyhow::Result<Reconciled> {
    let scan = inbox::scan(&config.inbox)?;
    let mut done = Reconciled {
        skipped: scan.skipped,
        ..Reconciled::default()
    };
    // Both lists are sorted by name: one merge pass pairs each inbox file with its
    // record and finds the records whose files are gone.
    let known = store.files()?;
    let mut previous: Vec<Option<&FileRecord>> = Vec::with_capacity(scan.files.len());
    let mut gone: Vec<&str> = Vec::new();
    let mut records = known.iter().peekable();
    for file in &scan.files {
        while let Some(record) = records.next_if(|record| record.name < file.name) {
            gone.push(&record.name);
        }
        previous.push(records.next_if(|record| record.name == file.name));
    }
    gone.extend(records.map(|record| record.name.as_str()));
    let mut orphans = HashSet::new();
    for name in gone {
        orphans.extend(retract(store, name, &mut done)?);
    }
    for (file, previous) in scan.files.iter().zip(previous) {
        let force = orphans.contains(&file.name);
        reconcile_file(config, store, file, previous, force, now, &mut done)?;
    }
    Ok(done)
}

/// Reconciles only the inbox files of these names (as the watcher reports them): each
/// is looked at now, so a name whose file is gone is retracted, and one that exists is
/// read when its size or mtime differ from what the store has. Unknown names of files
/// that are gone, and names that are not articles' (`.swp`, `.part` …), do nothing.
pub fn reconcile_names(
    config: &Config,
    store: &mut Store,
    names: &[String],
    now: i64,
) -> anyhow::Result<Reconciled> {
    let mut done = Reconciled::default();
    let mut orphans = Vec::new();
    let mut present = Vec::new();
    // In name order, as a full reconcile goes, so both store items in the same order.
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    for name in names {
        match inbox::look(&config.inbox, name) {
            Entry::File(file) => present.push(file),
            Entry::Skipped(name, reason) => {
                orphans.extend(retract(store, &name, &mut done)?);
                done.skipped.push((name, reason));
            }
            Entry::Gone => orphans.extend(retract(store, name, &mut done)?),
        }
    }
    for name in &orphans {
        if let Entry::File(file) = inbox::look(&config.inbox, name) {
            if !present.iter().any(|seen| seen.name == *name) {
                present.push(file);
            }
        }
    }
    for file in &present {
        let previous = store.file(&file.name)?;
        let force = orphans.contains(&file.name);
        reconcile_file(
            config,
            store,
            file,
            previous.as_ref(),
            force,
            now,
            &mut done,
        )?;
    }
    Ok(done)
}

/// Retracts a file that left the inbox, if the store knows it, and returns the files
/// that were duplicates of it: one of them may now stand alone.
fn retract(store: &mut Store, name: &str, done: &mut Reconciled) -> anyhow::Result<Vec<String>> {
    let orphans = store.duplicates_of(name)?;
    if store.remove_file(name)? {
        done.removed.push(name.to_string());
    }
    Ok(orphans)
}

/// Reads, hashes and (when the content changed, or `force`) ingests one file; a file
/// whose size and mtime match its record is not even read, unless `force`.
fn reconcile_file(
    config: &Config,
    store: &mut Store,
    file: &InboxFile,
    previous: Option<&FileRecord>,
    force: bool,
    now: i64,
    done: &mut Reconciled,
) -> anyhow::Result<()> {
    let same_metadata =
        previous.is_some_and(|record| record.size == file.size && record.mtime_ns == file.mtime_ns);
    if same_metadata && !force {
        done.n_unchanged += 1;
        return Ok(());
    }
    let path = config.inbox.join(&file.name);
    let bytes = match ingest::read_limited(&path, config.max_file_bytes) {
        Ok(bytes) => bytes,
        Err(error) => {
            done.unreadable.push((file.name.clone(), error.to_string()));
            return Ok(());
        }
    };
    let hash = match &bytes {
        Some(bytes) => blake3::hash(bytes).to_hex().to_string(),
        // Too large to read: the size and mtime stand in for the content.
        None => format!("unread:{}:{}", file.size, file.mtime_ns),
    };
    let mut record = FileRecord {
        name: file.name.clone(),
        size: file.size,
        mtime_ns: file.mtime_ns,
        hash: hash.clone(),
        first_seen: previous.map_or(now, |record| record.first_seen),
        last_changed: now,
        rejected: None,
        duplicate_of: None,
    };
    if previous.is_some_and(|previous| previous.hash == hash) && !force {
        // Touched, not changed: only the metadata moves.
        store.save_metadata(&file.name, file.size, file.mtime_ns)?;
        done.n_unchanged += 1;
        return Ok(());
    }
    let ingested = match &bytes {
        Some(bytes) => ingest::ingest_bytes(bytes, config.max_file_bytes),
        None => Err(Rejection::TooLarge {
            size: file.size,
            limit: config.max_file_bytes,
        }),
    };
    let original = match ingested {
        Ok(_) => store.original_with_hash(&hash, &file.name)?,
        Err(_) => None,
    };
    match (ingested, original) {
        (Err(rejection), _) => {
            record.rejected = Some(rejection.to_string());
            done.rejected
                .push((file.name.clone(), rejection.to_string()));
            store.save_file(&record, &[])?;
        }
        (Ok(_), Some(original)) => {
            done.duplicates.push((file.name.clone(), original.clone()));
            record.duplicate_of = Some(original);
            store.save_file(&record, &[])?;
        }
        (Ok(ingested), None) => {
            let items = new_items(&ingested.article, record.first_seen, config.timezone);
            store.save_file(&record, &items)?;
            done.published.push(file.name.clone());
        }
    }
    Ok(())
}

/// The store's items for an article. An explicit date is published at midnight in the
/// site's time zone; without one, an item is published when its file was first seen.
fn new_items(article: &Article, first_seen: i64, timezone: Tz) -> Vec<NewItem> {
    let published = article
        .date
        .and_then(|date| midnight(date, timezone))
        .unwrap_or(first_seen);
    let item = |lang: Lang, item: &Item| NewItem {
        lang,
        tag: item.lang,
        title: item.title.clone(),
        title_explicit: item.title_explicit,
        summary: item.summary.clone(),
        paragraphs: item.paragraphs.clone(),
        date: article.date,
        source: article.source.clone(),
        keywords: article.keywords.clone(),
        published,
    };
    let zh = article.zh.as_ref().map(|zh| item(Lang::Zh, zh));
    let en = article.en.as_ref().map(|en| item(Lang::En, en));
    zh.into_iter().chain(en).collect()
}

/// Unix seconds of 00:00 on `date` in `timezone` (the earlier instant if ambiguous).
fn midnight(date: NaiveDate, timezone: Tz) -> Option<i64> {
    let local = date.and_hms_opt(0, 0, 0)?;
    timezone
        .from_local_datetime(&local)
        .earliest()
        .map(|instant| instant.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dates_publish_at_local_midnight() {
        let date = NaiveDate::from_ymd_opt(2020, 8, 4).expect("a date");
        // 2020-08-04 00:00 in Shanghai (UTC+8) is 2020-08-03 16:00 UTC.
        assert_eq!(
            midnight(date, chrono_tz::Asia::Shanghai),
            Some(1_596_470_400)
        );
        assert_eq!(midnight(date, chrono_tz::UTC), Some(1_596_499_200));
    }
}
