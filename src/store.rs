//! The state database (SQLite, WAL): the files seen and the items made from them. The
//! only module that speaks SQL. It keeps item ids once assigned and never decides what
//! a file means: callers hand it records.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::config::Edition;
use crate::formatter::lang::LangTag;

/// Each migration takes the schema from its index to the next version; applied in
/// order, each in its own transaction, recorded in `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    // Version 1: files seen and their items.
    "CREATE TABLE files (
        name TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        hash TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_changed INTEGER NOT NULL,
        rejected TEXT,
        duplicate_of TEXT
    ) STRICT;
    CREATE INDEX files_by_hash ON files (hash);
    CREATE TABLE items (
        id TEXT PRIMARY KEY,
        file TEXT NOT NULL REFERENCES files (name) ON DELETE CASCADE,
        lang TEXT NOT NULL CHECK (lang IN ('zh', 'en')),
        tag TEXT NOT NULL,
        title TEXT NOT NULL,
        title_explicit INTEGER NOT NULL,
        summary TEXT NOT NULL,
        paragraphs TEXT NOT NULL,
        date TEXT,
        source TEXT,
        keywords TEXT NOT NULL,
        published INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (file, lang)
    ) STRICT;
    CREATE INDEX items_newest ON items (lang, published DESC, id);",
    // Version 2: small named values, such as what the pages were last rendered with.
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
    // Version 3: whether an item's page has been written since the item last changed,
    // so a page lost to a crash between the store and the disk is written later.
    "ALTER TABLE items ADD COLUMN page_written INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX items_page_pending ON items (page_written) WHERE page_written = 0;",
    // Version 4: items published in the same second are ordered newest stored first
    // (`seq`, the order items were first stored, which an edit keeps), so a burst never
    // hides its latest files; the index serves the whole order, however many items
    // share a second.
    "ALTER TABLE items ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE items SET seq = rowid;
    DROP INDEX items_newest;
    CREATE INDEX items_newest ON items (lang, published DESC, seq DESC);",
    // Version 5: the digest outbox. A digest is composed once (its rendered parts kept),
    // then each recipient's delivery is a row with its state; an item records the digest
    // that carried it (0: it was there before the first digest).
    "ALTER TABLE items ADD COLUMN digest INTEGER;
    CREATE INDEX items_undigested ON items (digest) WHERE digest IS NULL;
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        period TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        key TEXT NOT NULL,
        n_zh INTEGER NOT NULL,
        n_en INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE digest_parts (
        digest INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
        edition TEXT NOT NULL CHECK (edition IN ('zh', 'en', 'both')),
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT NOT NULL,
        PRIMARY KEY (digest, edition)
    ) STRICT;
    CREATE TABLE deliveries (
        digest INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        edition TEXT NOT NULL CHECK (edition IN ('zh', 'en', 'both')),
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error TEXT,
        done INTEGER,
        PRIMARY KEY (digest, email)
    ) STRICT;
    CREATE INDEX deliveries_pending ON deliveries (next_attempt) WHERE state = 'pending';
    CREATE TABLE subscribers (
        email TEXT PRIMARY KEY COLLATE NOCASE,
        token TEXT NOT NULL UNIQUE,
        opted_out INTEGER
    ) STRICT;",
];

/// Which feed an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// What the store knows of one inbox file. Times are Unix seconds, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// The content hash: the truth about whether a file changed.
    pub hash: String,
    pub first_seen: i64,
    pub last_changed: i64,
    /// Why the file was rejected, if it was.
    pub rejected: Option<String>,
    /// Another file with the same content, whose items stand for this one.
    pub duplicate_of: Option<String>,
}

/// What the store last saw of a file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub name: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// An item to store for a file, as the formatter made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub lang: Lang,
    pub tag: LangTag,
    pub title: String,
    pub title_explicit: bool,
    pub summary: String,
    pub paragraphs: Vec<String>,
    pub date: Option<NaiveDate>,
    pub source: Option<String>,
    pub keywords: Vec<String>,
    /// Unix seconds: the explicit date, else when the file was first seen.
    pub published: i64,
}

/// An item as stored, with the id it was given when first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub id: String,
    pub file: String,
    pub item: NewItem,
    /// Unix seconds: when its file last changed.
    pub updated: i64,
}

/// What the store holds, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub n_files: usize,
    pub n_duplicates: usize,
    pub n_items_zh: usize,
    pub n_items_en: usize,
    /// Rejected files with their reasons, by name.
    pub rejected: Vec<(String, String)>,
}

/// A digest to record, composed and rendered.
#[derive(Debug, Clone)]
pub struct NewDigest {
    /// What the digest is for: the scheduled time, or the time of a manual send. A
    /// period is composed once.
    pub period: String,
    pub created: i64,
    /// Unique to this digest, for Message-IDs.
    pub key: String,
    pub n_zh: usize,
    pub n_en: usize,
    pub parts: Vec<DigestPart>,
    /// Each recipient's address and edition; those who opted out are left out.
    pub recipients: Vec<(String, Edition)>,
    /// The items it carries, including those counted but not listed.
    pub items: Vec<String>,
    /// Items first seen before this time and in no digest are marked as there before
    /// the first digest, so they are never news later.
    pub baseline: Option<i64>,
}

/// One edition of a digest as rendered; the unsubscribe link is filled in per
/// recipient when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPart {
    pub edition: Edition,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A recorded digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRecord {
    pub id: i64,
    pub period: String,
    pub created: i64,
    pub key: String,
}

/// One recipient's copy of a digest, due to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub digest: DigestRecord,
    pub email: String,
    pub edition: Edition,
    pub attempts: u32,
    /// The recipient's unsubscribe token.
    pub token: String,
}

/// How the outbox stands, for `twinfeed status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outbox {
    pub n_digests: usize,
    pub n_pending: usize,
    pub n_sent: usize,
    pub n_skipped: usize,
    pub n_opted_out: usize,
    /// Failed deliveries: period, address, reason.
    pub failed: Vec<(String, String, String)>,
    /// Pending deliveries that have failed at least once: address, attempts, last error.
    pub retrying: Vec<(String, u32, String)>,
    /// The last digest's period and creation time.
    pub last: Option<(String, i64)>,
}

/// The open state database.
pub struct Store {
    connection: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// date. The folder is created too.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create the state folder {}", folder.display()))?;
        }
        let connection = Connection::open(path)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        let mut store = Store { connection };
        store
            .prepare()
            .with_context(|| format!("cannot prepare the state database {}", path.display()))?;
        Ok(store)
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        // WAL keeps readers off the writer's back and, with synchronous=NORMAL, loses no
        // committed transaction when the process is killed.
        self.connection.pragma_update(None, "journal_mode", "WAL")?;
        self.connection
            .pragma_update(None, "synchronous", "NORMAL")?;
        self.connection.pragma_update(None, "foreign_keys", true)?;
        self.connection
            .busy_timeout(std::time::Duration::from_secs(5))?;

        let version = self.schema_version()?;
        let known = MIGRATIONS.len();
        if version > known {
            anyhow::bail!(
                "the schema is version {version}, newer than this twinfeed knows ({known}); \
                 upgrade twinfeed or use another state file"
            );
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let transaction = self.connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", i64::try_from(index + 1)?)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// The schema version, `PRAGMA user_version`.
    pub fn schema_version(&self) -> anyhow::Result<usize> {
        let version: i64 = self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(usize::try_from(version).unwrap_or(0))
    }

    /// Runs `work` in one transaction: its writes commit together, or none do. A batch
    /// of files saved this way costs one WAL commit instead of one each.
    pub fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Store) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.connection.execute_batch("BEGIN IMMEDIATE")?;
        match work(self) {
            Ok(value) => {
                self.connection.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.connection.execute_batch("ROLLBACK") {
                    log::warn!("cannot roll back the state database: {rollback}");
                }
                Err(error)
            }
        }
    }

    /// The record of one file, if it was ever seen.
    pub fn file(&self, name: &str) -> anyhow::Result<Option<FileRecord>> {
        let record = self
            .connection
            .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE name = ?1"))?
            .query_row([name], file_from_row)
            .optional()?;
        Ok(record)
    }

    /// The name, size and mtime of every file seen, by name: what tells an unchanged
    /// file, in a fraction of the memory of the whole records.
    pub fn file_stamps(&self) -> anyhow::Result<Vec<FileStamp>> {
        // In table order, sorted here, as `files` does.
        let mut statement = self
            .connection
            .prepare("SELECT name, size, mtime_ns FROM files")?;
        let mut stamps: Vec<FileStamp> = statement
            .query_map([], |row| {
                Ok(FileStamp {
                    name: row.get(0)?,
                    size: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    mtime_ns: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        stamps.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(stamps)
    }

    /// Every file seen, by name.
    pub fn files(&self) -> anyhow::Result<Vec<FileRecord>> {
        // In table order, sorted here: `ORDER BY name` would walk the name index and
        // look up every row in the table.
        let mut statement = self
            .connection
            .prepare(&format!("SELECT {FILE_COLUMNS} FROM files"))?;
        let mut records: Vec<FileRecord> = statement
            .query_map([], file_from_row)?
            .collect::<Result<_, _>>()?;
        records.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// The name of another accepted, non-duplicate file with this content hash.
    pub fn original_with_hash(&self, hash: &str, except: &str) -> anyhow::Result<Option<String>> {
        // The earliest seen, by name among equals; chosen here, not by `ORDER BY` (see
        // `ORIGINAL_WITH_HASH`).
        let candidates: Vec<(i64, String)> = self
            .connection
            .prepare_cached(ORIGINAL_WITH_HASH)?
            .query_map([hash, except], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(candidates.into_iter().min().map(|(_, name)| name))
    }

    /// Records a file and replaces its items with `items`, in one transaction. An item
    /// keeps the id it was given when first stored; a language the file no longer has
    /// is retracted. Inside `in_transaction` it is part of that transaction, which an
    /// error rolls back whole (a savepoint per file would copy every page it touches).
    pub fn save_file(&mut self, record: &FileRecord, items: &[NewItem]) -> anyhow::Result<()> {
        if !self.connection.is_autocommit() {
            return save_file_in(&self.connection, record, items);
        }
        let transaction = self.connection.transaction()?;
        save_file_in(&transaction, record, items)?;
        transaction.commit()?;
        Ok(())
    }

    /// Records new size and modification time for a file whose content did not change.
    pub fn save_metadata(&mut self, name: &str, size: u64, mtime_ns: i64) -> anyhow::Result<()> {
        self.connection.execute(
            "UPDATE files SET size = ?2, mtime_ns = ?3 WHERE name = ?1",
            params![name, i64::try_from(size).unwrap_or(i64::MAX), mtime_ns],
        )?;
        Ok(())
    }

    /// Forgets a file that left the inbox, retracting its items. True if it was known.
    pub fn remove_file(&mut self, name: &str) -> anyhow::Result<bool> {
        let n_removed = self
            .connection
            .execute("DELETE FROM files WHERE name = ?1", [name])?;
        Ok(n_removed > 0)
    }

    /// Files recorded as having the same content as `name`.
    pub fn duplicates_of(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .connection
            .prepare_cached(DUPLICATES_OF)?
            .query_map([name], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        names.sort_unstable(); // not `ORDER BY`: see `ORIGINAL_WITH_HASH`
        Ok(names)
    }

    /// The ids of one file's items, with their languages.
    pub fn items_of_file(&self, name: &str) -> anyhow::Result<Vec<(String, Lang)>> {
        let mut ids: Vec<(String, Lang)> = self
            .connection
            .prepare_cached(ITEMS_OF_FILE)?
            .query_map([name], |row| {
                Ok((row.get(0)?, parsed_column(row, 1, Lang::parse)?))
            })?
            .collect::<Result<_, _>>()?;
        ids.sort_unstable_by_key(|(_, lang)| lang.as_str()); // see `ORIGINAL_WITH_HASH`
        Ok(ids)
    }

    /// The newest `limit` items of a language: by publication time, newest first; items
    /// published in the same second newest stored first (`seq`, kept through edits), so
    /// the latest arrivals of a burst are never the ones left out.
    pub fn newest_items(&self, lang: Lang, limit: usize) -> anyhow::Result<Vec<StoredItem>> {
        let mut statement = self.connection.prepare(
            "SELECT id, file, lang, tag, title, title_explicit, summary, paragraphs, date, source,
                    keywords, published, updated
             FROM items WHERE lang = ?1 ORDER BY published DESC, seq DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![lang.as_str(), limit], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The one number a `SELECT count(*)` gives.
    fn count(&self, sql: &str) -> anyhow::Result<usize> {
        let n: i64 = self.connection.query_row(sql, [], |row| row.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Counts for `twinfeed status`.
    pub fn summary(&self) -> anyhow::Result<Summary> {
        let mut statement = self
            .connection
            .prepare("SELECT name, rejected FROM files WHERE rejected IS NOT NULL ORDER BY name")?;
        let rejected = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Summary {
            n_files: self.count("SELECT count(*) FROM files")?,
            n_duplicates: self
                .count("SELECT count(*) FROM files WHERE duplicate_of IS NOT NULL")?,
            n_items_zh: self.count("SELECT count(*) FROM items WHERE lang = 'zh'")?,
            n_items_en: self.count("SELECT count(*) FROM items WHERE lang = 'en'")?,
            rejected,
        })
    }

    /// Items whose page has not been written since they last changed, as `(id, file)`.
    pub fn pages_pending(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT id, file FROM items WHERE page_written = 0 ORDER BY id")?;
        let ids = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Records that these items' pages are written.
    pub fn mark_pages_written(&mut self, ids: &[&str]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        for id in ids {
            transaction
                .prepare_cached("UPDATE items SET page_written = 1 WHERE id = ?1")?
                .execute([id])?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Whether any item's page has not been written since it last changed.
    pub fn any_page_pending(&self) -> anyhow::Result<bool> {
        Ok(self
            .connection
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM items WHERE page_written = 0)")?
            .query_row([], |row| row.get(0))?)
    }

    /// The next `limit` items after id `after` (all of them from `""`), by id, as
    /// `(id, file, page written)`: the items in batches, never all held at once.
    pub fn item_ids_after(
        &self,
        after: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, String, bool)>> {
        // The limit is written into the statement, not bound: see `ORIGINAL_WITH_HASH`.
        let mut statement = self.connection.prepare_cached(&item_ids_after_sql(limit))?;
        let ids = statement
            .query_map([after], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Every item's id and file, by id.
    pub fn item_ids(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut statement = self.connection.prepare("SELECT id, file FROM items")?;
        let mut ids: Vec<(String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// One item by id.
    pub fn item(&self, id: &str) -> anyhow::Result<Option<StoredItem>> {
        let item = self
            .connection
            .prepare_cached(
                "SELECT id, file, lang, tag, title, title_explicit, summary, paragraphs, date,
                        source, keywords, published, updated
                 FROM items WHERE id = ?1",
            )?
            .query_row([id], item_from_row)
            .optional()?;
        Ok(item)
    }

    /// A named value kept between runs.
    pub fn setting(&self, key: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .connection
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(value)
    }

    pub fn set_setting(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        self.connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            [key, value],
        )?;
        Ok(())
    }

    /// The id of the other language's item from the same file, for `hreflang` links.
    pub fn sibling_id(&self, file: &str, lang: Lang) -> anyhow::Result<Option<String>> {
        let other = match lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        let id = self
            .connection
            .prepare_cached("SELECT id FROM items WHERE file = ?1 AND lang = ?2")?
            .query_row([file, other.as_str()], |row| row.get(0))
            .optional()?;
        Ok(id)
    }
}

impl Store {
    /// The newest digest recorded, if any.
    pub fn last_digest(&self) -> anyhow::Result<Option<DigestRecord>> {
        let record = self
            .connection
            .query_row(
                "SELECT id, period, created, key FROM digests ORDER BY id DESC LIMIT 1",
                [],
                digest_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Whether a digest for this period was composed.
    pub fn has_digest(&self, period: &str) -> anyhow::Result<bool> {
        let found: bool = self.connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM digests WHERE period = ?1)",
            [period],
            |row| row.get(0),
        )?;
        Ok(found)
    }

    /// Items in no digest yet, newest first as in the feeds; with `since`, only those
    /// whose file was first seen at or after it.
    pub fn undigested_items(&self, since: Option<i64>) -> anyhow::Result<Vec<StoredItem>> {
        let mut statement = self.connection.prepare(
            "SELECT id, file, lang, tag, title, title_explicit, summary, paragraphs, date, source,
                    keywords, published, updated
             FROM items WHERE digest IS NULL
                 AND (?1 IS NULL OR file IN (SELECT name FROM files WHERE first_seen >= ?1))
             ORDER BY published DESC, seq DESC",
        )?;
        let rows = statement.query_map([since], item_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a composed digest, its deliveries (one per recipient, pending) and the
    /// items it carries, in one transaction. `None` if the period already has one.
    pub fn save_digest(&mut self, digest: &NewDigest) -> anyhow::Result<Option<i64>> {
        let secret = self.digest_secret()?;
        let transaction = self.connection.transaction()?;
        let inserted = transaction.execute(
            "INSERT INTO digests (period, created, key, n_zh, n_en) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (period) DO NOTHING",
            params![
                digest.period,
                digest.created,
                digest.key,
                i64::try_from(digest.n_zh)?,
                i64::try_from(digest.n_en)?
            ],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = transaction.last_insert_rowid();
        for part in &digest.parts {
            transaction
                .prepare_cached(
                    "INSERT INTO digest_parts (digest, edition, subject, text, html)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    id,
                    part.edition.as_str(),
                    part.subject,
                    part.text,
                    part.html
                ])?;
        }
        for (email, edition) in &digest.recipients {
            transaction
                .prepare_cached(
                    "INSERT INTO deliveries (digest, email, edition, state, next_attempt)
                     VALUES (?1, ?2, ?3, 'pending', ?4)",
                )?
                .execute(params![id, email, edition.as_str(), digest.created])?;
            transaction
                .prepare_cached(
                    "INSERT INTO subscribers (email, token) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .execute([email, &unsubscribe_token(&secret, email)])?;
        }
        for item in &digest.items {
            transaction
                .prepare_cached("UPDATE items SET digest = ?2 WHERE id = ?1")?
                .execute(params![item, id])?;
        }
        if let Some(before) = digest.baseline {
            transaction.execute(
                "UPDATE items SET digest = 0 WHERE digest IS NULL
                     AND file IN (SELECT name FROM files WHERE first_seen < ?1)",
                [before],
            )?;
        }
        transaction.commit()?;
        Ok(Some(id))
    }

    /// One edition of a digest as rendered.
    pub fn digest_part(&self, digest: i64, edition: Edition) -> anyhow::Result<Option<DigestPart>> {
        let part = self
            .connection
            .prepare_cached(
                "SELECT subject, text, html FROM digest_parts WHERE digest = ?1 AND edition = ?2",
            )?
            .query_row(params![digest, edition.as_str()], |row| {
                Ok(DigestPart {
                    edition,
                    subject: row.get(0)?,
                    text: row.get(1)?,
                    html: row.get(2)?,
                })
            })
            .optional()?;
        Ok(part)
    }

    /// Pending deliveries due at `now` (Unix seconds), oldest digest first; each
    /// recipient gets a token on the way.
    pub fn due_deliveries(&mut self, now: i64) -> anyhow::Result<Vec<Delivery>> {
        let secret = self.digest_secret()?;
        let mut statement = self.connection.prepare(
            "SELECT d.id, d.period, d.created, d.key, x.email, x.edition, x.attempts
             FROM deliveries x JOIN digests d ON d.id = x.digest
             WHERE x.state = 'pending' AND x.next_attempt <= ?1
             ORDER BY x.digest, x.rowid",
        )?;
        let rows = statement.query_map([now], |row| {
            Ok(Delivery {
                digest: digest_from_row(row)?,
                email: row.get(4)?,
                edition: parsed_column(row, 5, Edition::parse)?,
                attempts: row.get(6)?,
                token: String::new(),
            })
        })?;
        let mut deliveries: Vec<Delivery> = rows.collect::<Result<_, _>>()?;
        for delivery in &mut deliveries {
            delivery.token = unsubscribe_token(&secret, &delivery.email);
        }
        Ok(deliveries)
    }

    /// When the next pending delivery is due, if any is pending.
    pub fn next_delivery_time(&self) -> anyhow::Result<Option<i64>> {
        let time = self.connection.query_row(
            "SELECT min(next_attempt) FROM deliveries WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )?;
        Ok(time)
    }

    /// Records that the server accepted a delivery. Committed at once: this is the
    /// window in which a crash could send a digest twice.
    pub fn mark_sent(&mut self, digest: i64, email: &str, at: i64) -> anyhow::Result<()> {
        self.finish_delivery(digest, email, "sent", None, at)
    }

    /// Records a delivery that will not be made, with the reason.
    pub fn mark_failed(
        &mut self,
        digest: i64,
        email: &str,
        error: &str,
        at: i64,
    ) -> anyhow::Result<()> {
        self.finish_delivery(digest, email, "failed", Some(error), at)
    }

    /// Records a delivery left out because its recipient opted out after composing.
    pub fn mark_skipped(&mut self, digest: i64, email: &str, at: i64) -> anyhow::Result<()> {
        self.finish_delivery(digest, email, "skipped", Some("opted out"), at)
    }

    fn finish_delivery(
        &mut self,
        digest: i64,
        email: &str,
        state: &str,
        error: Option<&str>,
        at: i64,
    ) -> anyhow::Result<()> {
        self.connection
            .prepare_cached(
                "UPDATE deliveries SET state = ?3, attempts = attempts + 1,
                     last_error = coalesce(?4, last_error), done = ?5
                 WHERE digest = ?1 AND email = ?2 AND state = 'pending'",
            )?
            .execute(params![digest, email, state, error, at])?;
        Ok(())
    }

    /// Records a temporary failure: the delivery stays pending until `next_attempt`.
    pub fn mark_retry(
        &mut self,
        digest: i64,
        email: &str,
        error: &str,
        next_attempt: i64,
    ) -> anyhow::Result<()> {
        self.connection
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, next_attempt = ?4
                 WHERE digest = ?1 AND email = ?2 AND state = 'pending'",
            )?
            .execute(params![digest, email, error, next_attempt])?;
        Ok(())
    }

    /// Whether this address opted out of the digest.
    pub fn opted_out(&self, email: &str) -> anyhow::Result<bool> {
        let out: bool = self
            .connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM subscribers WHERE email = ?1 AND opted_out IS NOT NULL)",
            )?
            .query_row([email], |row| row.get(0))?;
        Ok(out)
    }

    /// Records an opt-out for the address whose token this is. Returns the address, or
    /// `None` for a token no recipient has (forged, altered or from another database).
    pub fn opt_out(&mut self, token: &str, at: i64) -> anyhow::Result<Option<String>> {
        let email = self
            .connection
            .query_row(
                "UPDATE subscribers SET opted_out = coalesce(opted_out, ?2) WHERE token = ?1
                 RETURNING email",
                params![token, at],
                |row| row.get(0),
            )
            .optional()?;
        Ok(email)
    }

    /// The secret unsubscribe tokens are made with, created on first use.
    fn digest_secret(&mut self) -> anyhow::Result<String> {
        const KEY: &str = "digest.secret";
        if let Some(secret) = self.setting(KEY)? {
            return Ok(secret);
        }
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
            .context("cannot read /dev/urandom for the unsubscribe secret")?;
        let secret = blake3::Hash::from(bytes).to_hex().to_string();
        self.connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [KEY, &secret],
        )?;
        Ok(self.setting(KEY)?.unwrap_or(secret))
    }

    /// The outbox in numbers, for `twinfeed status`.
    pub fn outbox(&self) -> anyhow::Result<Outbox> {
        let mut failed = self.connection.prepare(
            "SELECT d.period, x.email, coalesce(x.last_error, '')
             FROM deliveries x JOIN digests d ON d.id = x.digest
             WHERE x.state = 'failed' ORDER BY x.digest, x.email",
        )?;
        let failed = failed
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut retrying = self.connection.prepare(
            "SELECT email, attempts, coalesce(last_error, '') FROM deliveries
             WHERE state = 'pending' AND attempts > 0 ORDER BY digest, email",
        )?;
        let retrying = retrying
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let last = self
            .last_digest()?
            .map(|record| (record.period, record.created));
        Ok(Outbox {
            n_digests: self.count("SELECT count(*) FROM digests")?,
            n_pending: self.count("SELECT count(*) FROM deliveries WHERE state = 'pending'")?,
            n_sent: self.count("SELECT count(*) FROM deliveries WHERE state = 'sent'")?,
            n_skipped: self.count("SELECT count(*) FROM deliveries WHERE state = 'skipped'")?,
            n_opted_out: self
                .count("SELECT count(*) FROM subscribers WHERE opted_out IS NOT NULL")?,
            failed,
            retrying,
            last,
        })
    }
}

/// An address's unsubscribe token: 128 bits of a keyed BLAKE3 hash of the address in
/// lower case, as hex.
fn unsubscribe_token(secret: &str, email: &str) -> String {
    let key = blake3::hash(secret.as_bytes());
    let mut hasher = blake3::Hasher::new_keyed(key.as_bytes());
    hasher.update(b"twinfeed unsubscribe\0");
    hasher.update(email.to_lowercase().as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

fn digest_from_row(row: &Row) -> rusqlite::Result<DigestRecord> {
    Ok(DigestRecord {
        id: row.get(0)?,
        period: row.get(1)?,
        created: row.get(2)?,
        key: row.get(3)?,
    })
}

/// The id for a file's item in a language: the one it already has, else the file name
/// without its extension and the language (`000_fb95044e7f3821d4/zh`), else — when
/// another file with the same stem took that — the whole file name and the language.
fn new_item_id(connection: &Connection, file: &str, lang: Lang) -> rusqlite::Result<String> {
    let existing: Option<String> = connection
        .prepare_cached("SELECT id FROM items WHERE file = ?1 AND lang = ?2")?
        .query_row([file, lang.as_str()], |row| row.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let stem = Path::new(file).file_stem().map_or_else(
        || file.to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let by_stem = format!("{stem}/{}", lang.as_str());
    let taken: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM items WHERE id = ?1)")?
        .query_row([&by_stem], |row| row.get(0))?;
    Ok(if taken {
        format!("{file}/{}", lang.as_str())
    } else {
        by_stem
    })
}

/// `Store::save_file` on a connection that is in a transaction.
fn save_file_in(
    transaction: &Connection,
    record: &FileRecord,
    items: &[NewItem],
) -> anyhow::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO files (name, size, mtime_ns, hash, first_seen, last_changed, rejected,
                                duplicate_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (name) DO UPDATE SET size = ?2, mtime_ns = ?3, hash = ?4,
                 last_changed = ?6, rejected = ?7, duplicate_of = ?8",
        )?
        .execute(params![
            record.name,
            i64::try_from(record.size).unwrap_or(i64::MAX),
            record.mtime_ns,
            record.hash,
            record.first_seen,
            record.last_changed,
            record.rejected,
            record.duplicate_of,
        ])?;
    let langs: Vec<&str> = items.iter().map(|item| item.lang.as_str()).collect();
    transaction
        .prepare_cached(
            "DELETE FROM items WHERE file = ?1 AND lang NOT IN (SELECT value FROM json_each(?2))",
        )?
        .execute(params![record.name, serde_json::to_string(&langs)?])?;
    for item in items {
        let id = new_item_id(transaction, &record.name, item.lang)?;
        transaction
            .prepare_cached(
                "INSERT INTO items (id, file, lang, tag, title, title_explicit, summary,
                                    paragraphs, date, source, keywords, published, updated,
                                    page_written, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0,
                         (SELECT coalesce(max(rowid), 0) + 1 FROM items))
                 ON CONFLICT (file, lang) DO UPDATE SET tag = ?4, title = ?5,
                     title_explicit = ?6, summary = ?7, paragraphs = ?8, date = ?9,
                     source = ?10, keywords = ?11, published = ?12, updated = ?13,
                     page_written = 0",
            )?
            .execute(params![
                id,
                record.name,
                item.lang.as_str(),
                item.tag.as_str(),
                item.title,
                item.title_explicit,
                item.summary,
                serde_json::to_string(&item.paragraphs)?,
                item.date.map(|date| date.format("%Y-%m-%d").to_string()),
                item.source,
                serde_json::to_string(&item.keywords)?,
                item.published,
                record.last_changed,
            ])?;
    }
    Ok(())
}

/// The statements that run per file or per batch. None has an `ORDER BY` over an
/// equality lookup or a bound `LIMIT`: with STAT4 (as bundled) SQLite marks such a
/// statement expired whenever rusqlite's cache clears its bindings, and compiles it
/// again at its next use. These sort in Rust or write constants into the SQL instead;
/// a test checks that none is compiled twice.
const ORIGINAL_WITH_HASH: &str = "SELECT first_seen, name FROM files WHERE hash = ?1 \
     AND name <> ?2 AND rejected IS NULL AND duplicate_of IS NULL";
const DUPLICATES_OF: &str = "SELECT name FROM files WHERE duplicate_of = ?1";
const ITEMS_OF_FILE: &str = "SELECT id, lang FROM items WHERE file = ?1";
fn item_ids_after_sql(limit: usize) -> String {
    format!("SELECT id, file, page_written FROM items WHERE id > ?1 ORDER BY id LIMIT {limit}")
}

const FILE_COLUMNS: &str =
    "name, size, mtime_ns, hash, first_seen, last_changed, rejected, duplicate_of";

fn file_from_row(row: &Row) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        name: row.get(0)?,
        size: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
        mtime_ns: row.get(2)?,
        hash: row.get(3)?,
        first_seen: row.get(4)?,
        last_changed: row.get(5)?,
        rejected: row.get(6)?,
        duplicate_of: row.get(7)?,
    })
}

fn item_from_row(row: &Row) -> rusqlite::Result<StoredItem> {
    Ok(StoredItem {
        id: row.get(0)?,
        file: row.get(1)?,
        item: NewItem {
            lang: parsed_column(row, 2, Lang::parse)?,
            tag: parsed_column(row, 3, |text| match text {
                "zh-Hans" => Some(LangTag::ZhHans),
                "zh-Hant" => Some(LangTag::ZhHant),
                "en" => Some(LangTag::En),
                _ => None,
            })?,
            title: row.get(4)?,
            title_explicit: row.get(5)?,
            summary: row.get(6)?,
            paragraphs: parsed_column(row, 7, |text| serde_json::from_str(text).ok())?,
            date: match row.get::<_, Option<String>>(8)? {
                Some(_) => Some(parsed_column(row, 8, |text| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
                })?),
                None => None,
            },
            source: row.get(9)?,
            keywords: parsed_column(row, 10, |text| serde_json::from_str(text).ok())?,
            published: row.get(11)?,
        },
        updated: row.get(12)?,
    })
}

/// A text column parsed by `parse`; text it refuses is a conversion error naming the
/// column, as if the database held the wrong type.
fn parsed_column<T>(
    row: &Row,
    index: usize,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        let message = format!("unreadable value {text:?} in column {index}");
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    fn record(name: &str, hash: &str, first_seen: i64) -> FileRecord {
        FileRecord {
            name: name.into(),
            size: 1,
            mtime_ns: 1,
            hash: hash.into(),
            first_seen,
            last_changed: first_seen,
            rejected: None,
            duplicate_of: None,
        }
    }

    fn item(lang: Lang) -> NewItem {
        NewItem {
            lang,
            tag: match lang {
                Lang::Zh => LangTag::ZhHans,
                Lang::En => LangTag::En,
            },
            title: "t".into(),
            title_explicit: false,
            summary: "s".into(),
            paragraphs: vec!["p".into()],
            date: None,
            source: None,
            keywords: Vec::new(),
            published: 1,
        }
    }

    #[test]
    fn statements_run_per_file_are_compiled_once() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let mut store = Store::open(&folder.path().join("state.db")).expect("a store");
        for n in 0..40 {
            let name = format!("{n:02}.txt");
            // Every fourth file repeats an earlier one's content; some were seen earlier.
            let hash = format!("h{}", if n % 4 == 3 { n - 3 } else { n });
            let original = store.original_with_hash(&hash, &name).expect("a lookup");
            assert_eq!(original.is_some(), n % 4 == 3, "{name}");
            let mut saved = record(&name, &hash, 100 - n);
            saved.duplicate_of = original;
            store
                .save_file(&saved, &[item(Lang::Zh), item(Lang::En)])
                .expect("save");
            store.duplicates_of(&name).expect("duplicates");
            assert_eq!(store.items_of_file(&name).expect("items").len(), 2);
        }
        let mut after = String::new();
        while let Some((last, _, _)) = store.item_ids_after(&after, 7).expect("ids").pop() {
            after = last;
        }
        let queries = [
            ORIGINAL_WITH_HASH.to_string(),
            DUPLICATES_OF.to_string(),
            ITEMS_OF_FILE.to_string(),
            item_ids_after_sql(7),
        ];
        for sql in queries {
            let statement = store.connection.prepare_cached(&sql).expect("cached");
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "compiled again: {sql}"
            );
        }
    }
}
