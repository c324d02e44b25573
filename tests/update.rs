//! Incremental updates (what the daemon runs per batch of changed files) against full
//! builds: after every kind of inbox change, updating only the changed names must leave
//! exactly the output tree and item ids that a full build of the same inbox makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use twinfeed::build::Site;
use twinfeed::config::Config;

use crate::support::fixtures;

/// Every output under `root` (hidden temporaries aside), by relative path, with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, folder: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(folder).expect("list a folder") {
            let path = entry.expect("an entry").path();
            // Hidden files are the publisher's temporaries, never outputs.
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                let bytes = std::fs::read(&path).expect("read an output");
                files.insert(relative.display().to_string(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

/// Two sites fed the same inbox changes: one updated by name, one rebuilt in full.
struct Twins {
    folder: tempfile::TempDir,
    incremental: Site,
    full: Site,
}

impl Twins {
    fn new() -> Twins {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let config = |name: &str| {
            let mut config = Config::defaults(&folder.path().join(name));
            config.zh_variants = vec![
                twinfeed::config::ZhVariant::Hans,
                twinfeed::config::ZhVariant::Hant,
            ];
            config
        };
        let incremental = Site::open(config("incremental")).expect("open a site");
        let full = Site::open(config("full")).expect("open a site");
        Twins {
            folder,
            incremental,
            full,
        }
    }

    fn inboxes(&self) -> [PathBuf; 2] {
        ["incremental", "full"].map(|name| self.folder.path().join(name).join("inbox"))
    }

    /// Applies `change` to both inboxes, updates one site by `names` and rebuilds the
    /// other, and asserts both output trees are the same.
    fn step(&mut self, step: &str, now: i64, names: &[&str], change: impl Fn(&Path)) {
        for inbox in self.inboxes() {
            change(&inbox);
        }
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        self.incremental.update(&names, now).expect("update");
        self.full.build(now).expect("build");
        let incremental = tree(&self.incremental.config().output);
        let full = tree(&self.full.config().output);
        let paths = |tree: &BTreeMap<String, Vec<u8>>| tree.keys().cloned().collect::<Vec<_>>();
        assert_eq!(paths(&incremental), paths(&full), "after {step}");
        for (path, bytes) in &full {
            assert!(incremental[path] == *bytes, "after {step}: {path} differs");
        }
    }
}

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("seeds").join(name)).expect("a seed")
}

fn formatter_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("formatter").join(name)).expect("a fixture")
}

#[test]
fn updates_by_name_match_full_builds_through_every_kind_of_change() {
    let mut twins = Twins::new();
    let seeds: Vec<String> = std::fs::read_dir(fixtures().join("seeds"))
        .expect("the seeds")
        .map(|entry| {
            entry
                .expect("a seed")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let seed_names: Vec<&str> = seeds.iter().map(String::as_str).collect();
    twins.step("the seeds arrive", 1_700_000_000, &seed_names, |inbox| {
        for name in &seeds {
            std::fs::write(inbox.join(name), seed(name)).expect("write");
        }
    });
    let first = seeds[0].clone();
    let second = seeds[1].clone();
    twins.step("a file is edited", 1_700_000_100, &[&first], |inbox| {
        let mut bytes = seed(&first);
        bytes.extend_from_slice("\n\nThe meeting went on late into the night.\n".as_bytes());
        std::fs::write(inbox.join(&first), bytes).expect("write");
    });
    twins.step("a copy arrives", 1_700_000_200, &["copy.txt"], |inbox| {
        std::fs::copy(inbox.join(&second), inbox.join("copy.txt")).expect("copy");
    });
    twins.step("the original goes", 1_700_000_300, &[&second], |inbox| {
        std::fs::remove_file(inbox.join(&second)).expect("remove");
    });
    twins.step(
        "a Chinese-only file arrives",
        1_700_000_400,
        &["zh.txt"],
        |inbox| {
            let bytes = formatter_fixture("zh_only_simplified.txt");
            std::fs::write(inbox.join("zh.txt"), bytes).expect("write");
        },
    );
    twins.step(
        "a file is emptied (rejected)",
        1_700_000_500,
        &[&first],
        |inbox| std::fs::write(inbox.join(&first), b"").expect("write"),
    );
    twins.step(
        "a file becomes a link",
        1_700_000_600,
        &["zh.txt"],
        |inbox| {
            std::fs::remove_file(inbox.join("zh.txt")).expect("remove");
            std::os::unix::fs::symlink("/etc/hostname", inbox.join("zh.txt")).expect("link");
        },
    );
    twins.step(
        "names that are not articles, or were never there",
        1_700_000_700,
        &[".x.swp", "never.txt", "a.part"],
        |inbox| {
            std::fs::write(inbox.join(".x.swp"), b"swap").expect("write");
            std::fs::write(inbox.join("a.part"), b"partial").expect("write");
        },
    );
    twins.step(
        "a partial download is renamed into place",
        1_700_000_800,
        &["a.part", "a.txt"],
        |inbox| std::fs::rename(inbox.join("a.part"), inbox.join("a.txt")).expect("rename"),
    );
    let ids = |site: &Site| {
        let store = site.store();
        store.item_ids().expect("ids")
    };
    assert_eq!(ids(&twins.incremental), ids(&twins.full));
    assert!(!ids(&twins.full).is_empty());
}

#[test]
fn an_update_renders_only_the_language_that_changed() {
    let mut twins = Twins::new();
    let english = formatter_fixture("order_en_only.txt");
    twins.step("an English file", 1_700_000_000, &["en.txt"], |inbox| {
        std::fs::write(inbox.join("en.txt"), &english).expect("write");
    });
    let chinese = formatter_fixture("zh_only_simplified.txt");
    for inbox in twins.inboxes() {
        std::fs::write(inbox.join("zh.txt"), &chinese).expect("write");
    }
    let built = twins
        .incremental
        .update(&["zh.txt".to_string()], 1_700_000_100)
        .expect("update");
    assert!(built.written.iter().any(|path| path == "zh/atom.xml"));
    assert!(
        built.written.iter().all(|path| !path.starts_with("en/")),
        "{:?}",
        built.written
    );
    // Nothing was rendered and found unchanged: the English feeds were not rendered.
    assert_eq!(built.n_unchanged, 0);
    assert_eq!(built.reconciled.published, ["zh.txt"]);
}

#[test]
fn a_page_lost_between_the_store_and_the_disk_is_written_by_the_next_build() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let config = Config::defaults(folder.path());
    std::fs::create_dir_all(&config.inbox).expect("create the inbox");
    let english = formatter_fixture("order_en_only.txt");
    std::fs::write(config.inbox.join("en.txt"), &english).expect("write");
    twinfeed::build::build(&config, 1_700_000_000).expect("build");
    let page = config.output.join("en/en.html");
    let before = std::fs::read_to_string(&page).expect("the page");
    // An edit reaches the store, then the process dies before writing any output.
    let mut edited = english.clone();
    edited.extend_from_slice(b"\n\nA paragraph added by the edit.\n");
    std::fs::write(config.inbox.join("en.txt"), &edited).expect("write");
    {
        let mut store = twinfeed::store::Store::open(&config.state).expect("open");
        let done =
            twinfeed::reconcile::reconcile(&config, &mut store, 1_700_000_100).expect("reconcile");
        assert_eq!(done.published, ["en.txt"]);
    }
    assert_eq!(std::fs::read_to_string(&page).expect("the page"), before);
    // The file is unchanged since the store saw it, yet its page is written.
    let built = twinfeed::build::build(&config, 1_700_000_200).expect("build");
    assert!(built.reconciled.published.is_empty());
    let after = std::fs::read_to_string(&page).expect("the page");
    assert!(after.contains("A paragraph added by the edit."), "{after}");
}
