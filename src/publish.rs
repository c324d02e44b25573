//! Writing output files atomically: a temporary file in the same folder, made durable,
//! renamed over the old file, the folder synced. A reader sees the old file or the new
//! one, never half of one. A file whose bytes did not change is not rewritten, so its
//! modification time (and a server's `Last-Modified`) stays put. Many files are written
//! as one batch with one filesystem sync, not one fsync each; a few, with one each.

use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

/// What writing one output file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Replaced,
    Unchanged,
}

/// Writes `bytes` to `relative` under `root` unless the file already holds exactly
/// those bytes. `relative` must stay inside `root`: no `..`, no absolute path.
pub fn write_if_changed(root: &Path, relative: &Path, bytes: &[u8]) -> anyhow::Result<Written> {
    let written = write_all(
        root,
        &[(relative.to_string_lossy().into_owned(), bytes.to_vec())],
    )?;
    Ok(written
        .first()
        .map_or(Written::Unchanged, |(_, written)| *written))
}

/// Writes many output files at once, each atomically, skipping those whose bytes did
/// not change. Every changed file is written to a temporary file beside it and made
/// durable (one `syncfs` for a large batch, an `fdatasync` each for a small one); then
/// each is renamed over its target, in the order given, and each folder is synced once.
/// A reader sees each file whole, old or new; a crash leaves old files or new ones and
/// perhaps temporary files, never a torn file.
pub fn write_all(
    root: &Path,
    outputs: &[(String, Vec<u8>)],
) -> anyhow::Result<Vec<(String, Written)>> {
    let mut results = Vec::with_capacity(outputs.len());
    let mut pending: Vec<(PathBuf, PathBuf)> = Vec::new();
    let small = outputs.len() <= SMALL_BATCH;
    let staged = stage(root, outputs, &mut results, &mut pending);
    let finished = staged.and_then(|()| finish(root, &pending, small));
    if finished.is_err() {
        for (_, temporary) in &pending {
            let _ = fs::remove_file(temporary);
        }
    }
    finished.map(|()| results)
}

/// Compares each output with what is on disk and writes the changed ones to temporary
/// files, recording them in `pending` as (target, temporary).
fn stage(
    root: &Path,
    outputs: &[(String, Vec<u8>)],
    results: &mut Vec<(String, Written)>,
    pending: &mut Vec<(PathBuf, PathBuf)>,
) -> anyhow::Result<()> {
    for (relative, bytes) in outputs {
        let path = inside(root, Path::new(relative))?;
        let existed = match fs::read(&path) {
            Ok(current) if current == *bytes => {
                results.push((relative.clone(), Written::Unchanged));
                continue;
            }
            Ok(_) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let folder = path.parent().unwrap_or(root);
        fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the folder {}", folder.display()))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        // The process id keeps two writers (a build beside a daemon) off each other's file.
        let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
        fs::write(&temporary, bytes)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        pending.push((path, temporary));
        let written = if existed {
            Written::Replaced
        } else {
            Written::Created
        };
        results.push((relative.clone(), written));
    }
    Ok(())
}

/// Up to this many files, each is made durable by its own `fdatasync`, run side by side
/// so the journal commits them together; that costs less than a `syncfs`, which
/// flushes everything on the filesystem (a daemon's update of a few files). Above it,
/// one `syncfs` costs less (a build).
const SMALL_BATCH: usize = 32;

/// Makes the staged files durable, renames them into place in order and syncs their
/// folders.
fn finish(root: &Path, pending: &[(PathBuf, PathBuf)], small: bool) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    if small {
        let temporaries: Vec<&Path> = pending.iter().map(|(_, t)| t.as_path()).collect();
        sync_each(&temporaries)?;
    } else {
        sync_filesystem(root)?;
    }
    let mut folders = std::collections::BTreeSet::new();
    let mut replaced = Vec::new();
    for (path, temporary) in pending {
        let folder = path.parent().unwrap_or(root);
        // The old file keeps a second name until the new one is in place: freeing its
        // blocks can take milliseconds (a discard on some disks), so it is done after.
        let old = folder.join(format!(".{}.old.tmp", unique_suffix()));
        if fs::hard_link(path, &old).is_ok() {
            replaced.push(old);
        }
        fs::rename(temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
        folders.insert(folder.to_path_buf());
    }
    let folders: Vec<&Path> = folders.iter().map(PathBuf::as_path).collect();
    let synced = sync_each(&folders);
    if !replaced.is_empty() {
        // Off the publishing path; a crash before it leaves hidden `.old.tmp` files,
        // which are never served.
        let removed = std::thread::Builder::new()
            .name("twinfeed-unlink".into())
            .spawn(move || {
                for old in replaced {
                    let _ = fs::remove_file(old);
                }
            });
        if let Err(error) = removed {
            log::warn!("cannot start a thread to remove replaced files: {error}");
        }
    }
    synced
}

/// A name part no other writer uses at the same time: process id and a counter.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}.{n}", std::process::id())
}

/// `fsync`s each file or folder, a few threads at a time: the filesystem journal then
/// commits them together instead of one after another.
fn sync_each(paths: &[&Path]) -> anyhow::Result<()> {
    const THREADS: usize = 4;
    let sync = |paths: &[&Path]| -> anyhow::Result<()> {
        for path in paths {
            File::open(path)
                .and_then(|file| file.sync_all())
                .with_context(|| format!("cannot sync {}", path.display()))?;
        }
        Ok(())
    };
    if paths.len() <= 1 {
        return sync(paths);
    }
    let chunk = paths.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || sync(chunk)))
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a sync thread panicked")))
        })
    })
}

/// Flushes every written file on the filesystem holding `root` to disk, in one call.
fn sync_filesystem(root: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let folder = File::open(root).with_context(|| format!("cannot open {}", root.display()))?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open for the call.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot sync the filesystem of {}", root.display()));
    }
    Ok(())
}

/// Removes `relative` under `root` if it exists; true if it did.
pub fn remove(root: &Path, relative: &Path) -> anyhow::Result<bool> {
    let path = inside(root, relative)?;
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// True for the name of a temporary file made here that no running writer owns: one
/// left by a process killed mid-publish. The names carry the writer's process id
/// (`.{name}.{pid}.tmp`, `.{pid}.{n}.old.tmp`); a file is left over when that process is
/// gone, or is this one (call it only when this process is not writing). Without
/// `/proc` only this process's own files count.
pub fn is_leftover(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|name| name.strip_suffix(".tmp"))
    else {
        return false;
    };
    let pid = match inner.strip_suffix(".old") {
        Some(old) => old.split('.').next(),
        None => inner.rsplit('.').next(),
    };
    let Some(pid) = pid.and_then(|pid| pid.parse::<u32>().ok()) else {
        return false;
    };
    if pid == std::process::id() {
        return true;
    }
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the [leftover](is_leftover) temporary files in `folder`; returns how many.
/// Call it only when this process is not writing there.
pub fn remove_leftovers(folder: &Path) -> usize {
    let Ok(entries) = fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| is_leftover(&entry.file_name().to_string_lossy()))
        .filter(|entry| fs::remove_file(entry.path()).is_ok())
        .count()
}

/// `root/relative`, refusing a `relative` that is absolute or climbs out with `..`.
fn inside(root: &Path, relative: &Path) -> anyhow::Result<PathBuf> {
    let plain = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
    if !plain || relative.as_os_str().is_empty() {
        bail!(
            "refusing to write {}: not a plain path inside the output folder",
            relative.display()
        );
    }
    Ok(root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_the_temporary_files_of_writers_that_are_gone() {
        let me = std::process::id();
        let gone = (1..u32::MAX)
            .map(|n| u32::MAX - n)
            .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            .expect("a process id nobody has");
        let alive = 1; // init
        assert!(is_leftover(&format!(".rss.xml.{gone}.tmp")));
        assert!(is_leftover(&format!(".{gone}.7.old.tmp")));
        assert!(is_leftover(&format!(".a.b.html.{me}.tmp")));
        assert!(!is_leftover(&format!(".rss.xml.{alive}.tmp")));
        assert!(!is_leftover(&format!(".{alive}.7.old.tmp")));
        for other in [
            "rss.xml",
            ".hidden.tmp",
            ".x.notapid.tmp",
            "a.1.tmp",
            ".x.1.tmp.bak",
        ] {
            assert!(!is_leftover(other), "{other}");
        }
        let folder = tempfile::tempdir().expect("a temporary folder");
        for name in [
            format!(".p.html.{gone}.tmp"),
            format!(".p.html.{alive}.tmp"),
        ] {
            fs::write(folder.path().join(name), "x").expect("write");
        }
        fs::write(folder.path().join("p.html"), "x").expect("write");
        assert_eq!(remove_leftovers(folder.path()), 1);
        assert_eq!(remove_leftovers(folder.path()), 0);
        assert_eq!(fs::read_dir(folder.path()).expect("list").count(), 2);
    }

    #[test]
    fn creates_replaces_and_leaves_unchanged_files_alone() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let relative = Path::new("en/atom.xml");
        let write = |bytes: &[u8]| write_if_changed(root.path(), relative, bytes).expect("write");
        assert_eq!(write(b"one"), Written::Created);
        let path = root.path().join(relative);
        let first_modified = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write(b"one"), Written::Unchanged);
        let still = fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(first_modified, still, "an unchanged file is not touched");
        assert_eq!(write(b"two"), Written::Replaced);
        assert_eq!(fs::read(&path).expect("read"), b"two");
        // The replaced file's second name is removed by a background thread.
        let listing = || -> Vec<std::ffi::OsString> {
            fs::read_dir(root.path().join("en"))
                .expect("list")
                .filter_map(Result::ok)
                .map(|entry| entry.file_name())
                .collect()
        };
        let start = std::time::Instant::now();
        while listing().len() > 1 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            listing(),
            [std::ffi::OsString::from("atom.xml")],
            "no temporary file is left"
        );
        assert!(remove(root.path(), relative).expect("remove"));
        assert!(!remove(root.path(), relative).expect("remove again"));
    }

    #[test]
    fn paths_outside_the_output_folder_are_refused() {
        let root = tempfile::tempdir().expect("a temporary folder");
        for bad in ["../escape.xml", "/etc/passwd", "a/../../b", ""] {
            let result = write_if_changed(root.path(), Path::new(bad), b"x");
            assert!(result.is_err(), "{bad:?} was written");
        }
        assert!(remove(root.path(), Path::new("../x")).is_err());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let relative = Path::new("zh/rss.xml");
        write_if_changed(root.path(), relative, b"old").expect("write");
        // A directory where the temporary file would go makes the write fail.
        let blocker = root
            .path()
            .join(format!("zh/.rss.xml.{}.tmp", std::process::id()));
        fs::create_dir(&blocker).expect("create the blocker");
        assert!(write_if_changed(root.path(), relative, b"new").is_err());
        assert_eq!(fs::read(root.path().join(relative)).expect("read"), b"old");
    }
}
