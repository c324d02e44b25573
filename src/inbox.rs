//! Finding article files: which names are articles (a pure function: editor swap files,
//! partial downloads and hidden files are not) and a scan of the inbox folder that
//! returns each article's name, size and modification time. Never writes to the inbox.

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;

/// One article file found in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxFile {
    pub name: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// What a scan found: the articles, and entries passed over with the reason.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub files: Vec<InboxFile>,
    pub skipped: Vec<(String, &'static str)>,
}

/// Endings of files that are still being written or belong to an editor.
const TEMPORARY_ENDINGS: &[&str] = &[
    "~",
    ".swp",
    ".swo",
    ".swx",
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".kate-swp",
];

/// True if a file of this name is an article: not hidden (`.name`, which also covers
/// rsync's and Emacs's temporary files), not an editor or download temporary
/// (`name~`, `.swp`, `.tmp`, `.part`, `.crdownload` …), not an Emacs autosave (`#name#`)
/// and not the file Vim creates to test a folder (`4913`).
pub fn is_article_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(name.is_empty()
        || name.starts_with('.')
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || TEMPORARY_ENDINGS
            .iter()
            .any(|ending| lower.ends_with(ending)))
}

/// Lists the article files directly inside `inbox`, by name. A missing inbox is an
/// error, not an empty one: taking it for empty would retract every article because a
/// disk was unmounted or a folder moved.
/// Subfolders, links, pipes, devices and names that are not UTF-8 are skipped with a
/// reason; reading a link could leave the inbox, and reading a pipe could block.
pub fn scan(inbox: &Path) -> anyhow::Result<Scan> {
    let entries = match std::fs::read_dir(inbox) {
        Ok(entries) => entries,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot list the inbox {}", inbox.display()))
        }
    };
    let mut scan = Scan::default();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list the inbox {}", inbox.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            let lossy = entry.file_name().to_string_lossy().into_owned();
            scan.skipped.push((lossy, "name is not UTF-8"));
            continue;
        };
        if !is_article_name(&name) {
            continue;
        }
        // `DirEntry::metadata` is an `lstat` relative to the open folder: no path walk.
        match classify(name, entry.metadata()) {
            Entry::File(file) => scan.files.push(file),
            Entry::Skipped(name, reason) => scan.skipped.push((name, reason)),
            // A file that vanished since the listing is simply not there any more.
            Entry::Gone => {}
        }
    }
    scan.files.sort_by(|a, b| a.name.cmp(&b.name));
    scan.skipped.sort();
    Ok(scan)
}

/// What is now at one name in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(InboxFile),
    /// Something that is not an article file, with its name and why.
    Skipped(String, &'static str),
    /// Nothing, or a name that is not an article's.
    Gone,
}

/// Looks at one name in the inbox, as a scan would: a single `lstat`.
pub fn look(inbox: &Path, name: &str) -> Entry {
    if !is_article_name(name) || name.contains('/') {
        return Entry::Gone;
    }
    classify(name.to_string(), inbox.join(name).symlink_metadata())
}

/// An article file, a skipped entry with its reason, or nothing if it is gone.
fn classify(name: String, metadata: std::io::Result<std::fs::Metadata>) -> Entry {
    let Ok(metadata) = metadata else {
        return Entry::Gone;
    };
    let kind = metadata.file_type();
    if kind.is_symlink() {
        Entry::Skipped(name, "a symbolic link")
    } else if kind.is_dir() {
        Entry::Skipped(name, "a folder")
    } else if !kind.is_file() {
        Entry::Skipped(name, "not a regular file")
    } else {
        Entry::File(InboxFile {
            name,
            size: metadata.len(),
            mtime_ns: mtime_ns(&metadata),
        })
    }
}

/// Nanoseconds since the epoch of a file's modification, 0 where the system has none.
pub fn mtime_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|since| i64::try_from(since.as_nanos()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_names() {
        for name in [
            "000_fb95044e7f3821d4.txt",
            "article",
            "新闻.txt",
            "a.TXT",
            "x#y",
        ] {
            assert!(is_article_name(name), "{name}");
        }
        for name in [
            ".hidden.txt",
            ".000.txt.swp",
            "000.txt~",
            "000.txt.tmp",
            "000.TXT.PART",
            "000.txt.crdownload",
            "#000.txt#",
            ".#000.txt",
            "4913",
            ".000.txt.XyZ123",
            "",
        ] {
            assert!(!is_article_name(name), "{name}");
        }
    }

    #[test]
    fn scan_lists_articles_and_skips_what_is_not_one() {
        let inbox = tempfile::tempdir().expect("a temporary folder");
        let path = inbox.path();
        std::fs::write(path.join("b.txt"), "会议召开。").expect("write");
        std::fs::write(path.join("a.txt"), "The meeting.").expect("write");
        std::fs::write(path.join(".a.txt.swp"), "swap").expect("write");
        std::fs::write(path.join("c.txt.part"), "partial").expect("write");
        std::fs::create_dir(path.join("folder")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/passwd", path.join("link.txt")).expect("symlink");
        let fifo = std::process::Command::new("mkfifo")
            .arg(path.join("pipe.txt"))
            .status()
            .expect("mkfifo runs");
        assert!(fifo.success());
        let scan = scan(path).expect("scan");
        let names: Vec<&str> = scan.files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "b.txt"]);
        assert_eq!(scan.files[1].size, "会议召开。".len() as u64);
        assert!(scan.files[0].mtime_ns > 0);
        assert_eq!(
            scan.skipped,
            [
                ("folder".to_string(), "a folder"),
                ("link.txt".to_string(), "a symbolic link"),
                ("pipe.txt".to_string(), "not a regular file"),
            ]
        );
    }

    #[test]
    fn a_missing_inbox_is_an_error_not_an_empty_inbox() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let error = scan(&folder.path().join("nowhere")).expect_err("a missing inbox");
        assert!(format!("{error:#}").contains("nowhere"), "{error:#}");
    }
}
