//! The state database (SQLite, WAL): the files seen and the items made from them. The
//! only module that speaks SQL. It keeps item ids once assigned and never decides what
//! a file means: callers hand it records.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension, Row};

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

    /// The record of one file, if it was ever seen.
    pub fn file(&self, name: &str) -> anyhow::Result<Option<FileRecord>> {
        let record = self
            .connection
            .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE name = ?1"))?
            .query_row([name], file_from_row)
            .optional()?;
        Ok(record)
    }

    /// Every file seen, by name.
    pub fn files(&self) -> anyhow::Result<Vec<FileRecord>> {
        let mut statement = self
            .connection
            .prepare(&format!("SELECT {FILE_COLUMNS} FROM files ORDER BY name"))?;
        let records = statement
            .query_map([], file_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(records)
    }

    /// The name of another accepted, non-duplicate file with this content hash.
    pub fn original_with_hash(&self, hash: &str, except: &str) -> anyhow::Result<Option<String>> {
        let name = self
            .connection
            .prepare_cached(
                "SELECT name FROM files WHERE hash = ?1 AND name <> ?2 \
                 AND rejected IS NULL AND duplicate_of IS NULL ORDER BY first_seen, name LIMIT 1",
            )?
            .query_row([hash, except], |row| row.get(0))
            .optional()?;
        Ok(name)
    }

    /// Records a file and replaces its items with `items`, in one transaction. An item
    /// keeps the id it was given when first stored; a language the file no longer has
    /// is retracted.
    pub fn save_file(&mut self, record: &FileRecord, items: &[NewItem]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.prepare_cached(
            "INSERT INTO files (name, size, mtime_ns, hash, first_seen, last_changed, rejected, duplicate_of)
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
            let id = new_item_id(&transaction, &record.name, item.lang)?;
            transaction.prepare_cached(
                "INSERT INTO items (id, file, lang, tag, title, title_explicit, summary, paragraphs,
                                    date, source, keywords, published, updated, page_written,
                                    seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0,
                         (SELECT coalesce(max(rowid), 0) + 1 FROM items))
                 ON CONFLICT (file, lang) DO UPDATE SET tag = ?4, title = ?5, title_explicit = ?6,
                     summary = ?7, paragraphs = ?8, date = ?9, source = ?10, keywords = ?11,
                     published = ?12, updated = ?13, page_written = 0",
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
        let names = self
            .connection
            .prepare_cached("SELECT name FROM files WHERE duplicate_of = ?1 ORDER BY name")?
            .query_map([name], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// The ids of one file's items, with their languages.
    pub fn items_of_file(&self, name: &str) -> anyhow::Result<Vec<(String, Lang)>> {
        let ids = self
            .connection
            .prepare_cached("SELECT id, lang FROM items WHERE file = ?1 ORDER BY lang")?
            .query_map([name], |row| {
                Ok((row.get(0)?, parsed_column(row, 1, Lang::parse)?))
            })?
            .collect::<Result<_, _>>()?;
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

    /// Counts for `twinfeed status`.
    pub fn summary(&self) -> anyhow::Result<Summary> {
        let count = |sql: &str| -> anyhow::Result<usize> {
            let n: i64 = self.connection.query_row(sql, [], |row| row.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        };
        let mut statement = self
            .connection
            .prepare("SELECT name, rejected FROM files WHERE rejected IS NOT NULL ORDER BY name")?;
        let rejected = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Summary {
            n_files: count("SELECT count(*) FROM files")?,
            n_duplicates: count("SELECT count(*) FROM files WHERE duplicate_of IS NOT NULL")?,
            n_items_zh: count("SELECT count(*) FROM items WHERE lang = 'zh'")?,
            n_items_en: count("SELECT count(*) FROM items WHERE lang = 'en'")?,
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

    /// Every item's id and file, by id.
    pub fn item_ids(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT id, file FROM items ORDER BY id")?;
        let ids = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
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
