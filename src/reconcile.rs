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
use crate::ingest::{self, Ingested};
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
    // Both lists are sorted by name: one merge pass pairs each inbox file with what the
    // store knows of it, and finds the files that are gone. Only the size and mtime of
    // every known file are held; a file's whole record is read when they differ.
    let known = store.file_stamps()?;
    let mut same_stamp: Vec<Option<bool>> = Vec::with_capacity(scan.files.len());
    let mut gone: Vec<&str> = Vec::new();
    let mut stamps = known.iter().peekable();
    for file in &scan.files {
        while let Some(stamp) = stamps.next_if(|stamp| stamp.name < file.name) {
            gone.push(&stamp.name);
        }
        let stamp = stamps.next_if(|stamp| stamp.name == file.name);
        same_stamp
            .push(stamp.map(|stamp| stamp.size == file.size && stamp.mtime_ns == file.mtime_ns));
    }
    gone.extend(stamps.map(|stamp| stamp.name.as_str()));
    let mut orphans = HashSet::new();
    for name in gone {
        orphans.extend(retract(store, name, &mut done)?);
    }
    drop(known);
    let mut jobs = Vec::new();
    for (file, same_stamp) in scan.files.iter().zip(same_stamp) {
        let force = orphans.contains(&file.name);
        if same_stamp == Some(true) && !force {
            done.n_unchanged += 1;
            continue;
        }
        let previous = match same_stamp {
            Some(_) => store.file(&file.name)?.map(Box::new),
            None => None,
        };
        jobs.push(Job {
            file,
            previous,
            force,
        });
    }
    reconcile_files(config, store, &jobs, now, &mut done)?;
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
    let records = present
        .iter()
        .map(|file| store.file(&file.name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let jobs: Vec<Job> = present
        .iter()
        .zip(records)
        .map(|(file, previous)| Job {
            file,
            previous: previous.map(Box::new),
            force: orphans.contains(&file.name),
        })
        .collect();
    reconcile_files(config, store, &jobs, now, &mut done)?;
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

/// One inbox file to reconcile: its record, if known, and whether it must be read even
/// if its metadata did not change (a duplicate whose original left).
struct Job<'a> {
    file: &'a InboxFile,
    /// Boxed: a cold build holds a job per inbox file, nearly all without a record.
    previous: Option<Box<FileRecord>>,
    force: bool,
}

impl Job<'_> {
    /// True when the file need not even be read: its size and mtime match its record.
    fn unchanged(&self) -> bool {
        !self.force
            && self.previous.as_ref().is_some_and(|record| {
                record.size == self.file.size && record.mtime_ns == self.file.mtime_ns
            })
    }
}

/// What reading one file found, before the store is asked anything.
// Nearly every value is a `Read`: boxing it would only add an allocation per file.
#[allow(clippy::large_enum_variant)]
enum Looked {
    /// The disk would not give the bytes now; tried again next time.
    Unreadable(String),
    /// Read and hashed. `ingested` is `None` when the content is the stored one (the
    /// file was only touched) and the file is not forced.
    Read {
        hash: String,
        ingested: Option<Result<Ingested, Rejection>>,
    },
}

/// Files read, hashed and ingested per batch; each batch is saved in one transaction.
const BATCH: usize = 64;

/// Reconciles these files in order. Reading, hashing and ingesting (the slow, pure part)
/// runs on worker threads, a batch each in turn, while this thread saves the batches
/// before them in the store, in order: the store sees the same sequence of saves as a
/// one-by-one pass, so ids and duplicates come out the same.
fn reconcile_files(
    config: &Config,
    store: &mut Store,
    jobs: &[Job],
    now: i64,
    done: &mut Reconciled,
) -> anyhow::Result<()> {
    let todo: Vec<&Job> = jobs.iter().filter(|job| !job.unchanged()).collect();
    done.n_unchanged += jobs.len() - todo.len();
    let batches: Vec<&[&Job]> = todo.chunks(BATCH).collect();
    let n_workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(batches.len());
    if n_workers <= 1 {
        for batch in batches {
            let looked = batch.iter().map(|job| look(config, job)).collect();
            save_batch(config, store, batch, looked, now, done)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // Worker `w` reads batches w, w + n, w + 2n …, each sent on its own channel of one
        // place; taking from the channels in turn gives the batches back in order, with at
        // most two per worker in memory.
        let receivers: Vec<_> = (0..n_workers)
            .map(|worker| {
                let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Looked>>(1);
                let batches = &batches;
                scope.spawn(move || {
                    for batch in batches.iter().skip(worker).step_by(n_workers) {
                        let looked = batch.iter().map(|job| look(config, job)).collect();
                        if sender.send(looked).is_err() {
                            break; // the saving side stopped on an error
                        }
                    }
                });
                receiver
            })
            .collect();
        for (index, batch) in batches.iter().enumerate() {
            let looked = receivers[index % n_workers]
                .recv()
                .map_err(|_| anyhow::anyhow!("a reading thread stopped"))?;
            save_batch(config, store, batch, looked, now, done)?;
        }
        Ok(())
    })
}

/// Reads, hashes and (when the content changed, or the job is forced) ingests one file.
fn look(config: &Config, job: &Job) -> Looked {
    let path = config.inbox.join(&job.file.name);
    let bytes = match ingest::read_limited(&path, config.max_file_bytes) {
        Ok(bytes) => bytes,
        Err(error) => return Looked::Unreadable(error.to_string()),
    };
    let hash = match &bytes {
        Some(bytes) => blake3::hash(bytes).to_hex().to_string(),
        // Too large to read: the size and mtime stand in for the content.
        None => format!("unread:{}:{}", job.file.size, job.file.mtime_ns),
    };
    let touched = job
        .previous
        .as_ref()
        .is_some_and(|previous| previous.hash == hash)
        && !job.force;
    let ingested = (!touched).then(|| match &bytes {
        Some(bytes) => ingest::ingest_bytes(bytes, config.max_file_bytes),
        None => Err(Rejection::TooLarge {
            size: job.file.size,
            limit: config.max_file_bytes,
        }),
    });
    Looked::Read { hash, ingested }
}

/// Saves what was found of a batch of files, in one transaction.
fn save_batch(
    config: &Config,
    store: &mut Store,
    batch: &[&Job],
    looked: Vec<Looked>,
    now: i64,
    done: &mut Reconciled,
) -> anyhow::Result<()> {
    store.in_transaction(|store| {
        for (job, looked) in batch.iter().zip(looked) {
            save(config, store, job, looked, now, done)?;
        }
        Ok(())
    })
}

/// Records in the store what reading one file found.
fn save(
    config: &Config,
    store: &mut Store,
    job: &Job,
    looked: Looked,
    now: i64,
    done: &mut Reconciled,
) -> anyhow::Result<()> {
    let (file, previous) = (job.file, job.previous.as_ref());
    let (hash, ingested) = match looked {
        Looked::Unreadable(error) => {
            done.unreadable.push((file.name.clone(), error));
            return Ok(());
        }
        Looked::Read { hash, ingested } => (hash, ingested),
    };
    let Some(ingested) = ingested else {
        // Touched, not changed: only the metadata moves.
        store.save_metadata(&file.name, file.size, file.mtime_ns)?;
        done.n_unchanged += 1;
        return Ok(());
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
