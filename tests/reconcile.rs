//! Reconciling a real inbox folder with a real store: new, edited, touched, deleted,
//! rejected and duplicate files.

use std::path::Path;

use twinfeed::config::Config;
use twinfeed::reconcile::reconcile;
use twinfeed::store::{Lang, Store};

use crate::support::fixtures;

/// A temporary site: the default config relative to a temporary folder, its store, and
/// an inbox holding copies of the seeds.
struct Site {
    folder: tempfile::TempDir,
    config: Config,
    store: Store,
}

impl Site {
    fn with_seeds() -> Site {
        let site = Site::empty("");
        for entry in std::fs::read_dir(fixtures().join("seeds")).expect("the seeds") {
            let path = entry.expect("a seed").path();
            let name = path.file_name().expect("a name");
            std::fs::copy(&path, site.config.inbox.join(name)).expect("copy a seed");
        }
        site
    }

    fn empty(config_text: &str) -> Site {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let config = Config::parse(config_text, folder.path(), None).expect("a valid config");
        std::fs::create_dir_all(&config.inbox).expect("create the inbox");
        let store = Store::open(&config.state).expect("open the store");
        Site {
            folder,
            config,
            store,
        }
    }

    fn inbox(&self, name: &str) -> std::path::PathBuf {
        self.config.inbox.join(name)
    }

    fn ids(&self, lang: Lang) -> Vec<String> {
        let mut ids: Vec<String> = self
            .store
            .newest_items(lang, 1000)
            .expect("items")
            .into_iter()
            .map(|stored| stored.id)
            .collect();
        ids.sort();
        ids
    }
}

fn set_mtime(path: &Path, seconds: u64) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    let file = std::fs::File::options()
        .append(true)
        .open(path)
        .expect("open to touch");
    file.set_modified(time).expect("set mtime");
}

#[test]
fn seeds_are_published_once_and_a_second_pass_reads_nothing() {
    let mut site = Site::with_seeds();
    let first = reconcile(&site.config, &mut site.store, 1_000).expect("reconcile");
    assert_eq!(first.published.len(), 5);
    assert!(first.rejected.is_empty() && first.unreadable.is_empty());
    assert_eq!(site.ids(Lang::Zh).len(), 5);
    assert_eq!(site.ids(Lang::En).len(), 4, "seed 004 is Chinese only");
    assert!(site
        .ids(Lang::Zh)
        .contains(&"002_08a97c52deef5f3b/zh".to_string()));
    let second = reconcile(&site.config, &mut site.store, 2_000).expect("reconcile again");
    assert_eq!(second.n_unchanged, 5);
    assert!(!second.items_changed());
    assert_eq!(site.folder.path().join("inbox"), site.config.inbox);
}

#[test]
fn published_times_come_from_the_date_or_first_sight() {
    let mut site = Site::with_seeds();
    reconcile(&site.config, &mut site.store, 1_700_000_000).expect("reconcile");
    let zh = site.store.newest_items(Lang::Zh, 10).expect("items");
    let published = |id: &str| {
        zh.iter()
            .find(|stored| stored.id == id)
            .map(|stored| stored.item.published)
            .expect("the item")
    };
    // 2020-08-04 00:00 in Asia/Shanghai.
    assert_eq!(published("002_08a97c52deef5f3b/zh"), 1_596_470_400);
    assert_eq!(published("000_fb95044e7f3821d4/zh"), 1_700_000_000);
    // Newest first: the undated seeds (first seen now) before the dated ones.
    assert_eq!(
        zh.last().map(|stored| stored.id.as_str()),
        Some("002_08a97c52deef5f3b/zh")
    );
}

#[test]
fn an_edit_republishes_with_the_same_ids_and_a_touch_does_not() {
    let mut site = Site::with_seeds();
    reconcile(&site.config, &mut site.store, 1_000).expect("reconcile");
    let name = "000_fb95044e7f3821d4.txt";
    set_mtime(&site.inbox(name), 5_000);
    let touched = reconcile(&site.config, &mut site.store, 2_000).expect("after a touch");
    assert!(!touched.items_changed(), "{touched:?}");
    let record = site.store.file(name).expect("query").expect("known");
    assert_eq!(
        (record.mtime_ns, record.last_changed),
        (5_000_000_000_000, 1_000)
    );
    let mut text = std::fs::read_to_string(site.inbox(name)).expect("read");
    text.push_str("\n市政府外辦補充說明了相關情況。");
    std::fs::write(site.inbox(name), text).expect("edit");
    let edited = reconcile(&site.config, &mut site.store, 3_000).expect("after an edit");
    assert_eq!(edited.published, [name]);
    let zh = site.store.newest_items(Lang::Zh, 10).expect("items");
    let item = zh
        .iter()
        .find(|stored| stored.id == "000_fb95044e7f3821d4/zh")
        .expect("same id");
    assert_eq!(item.item.paragraphs.len(), 4);
    assert_eq!(item.updated, 3_000);
    assert_eq!(item.item.published, 1_000, "first seen does not move");
}

#[test]
fn a_deleted_file_is_retracted() {
    let mut site = Site::with_seeds();
    reconcile(&site.config, &mut site.store, 1_000).expect("reconcile");
    std::fs::remove_file(site.inbox("003_77a3382a7273a2e2.txt")).expect("delete");
    let done = reconcile(&site.config, &mut site.store, 2_000).expect("reconcile");
    assert_eq!(done.removed, ["003_77a3382a7273a2e2.txt"]);
    assert!(!site
        .ids(Lang::En)
        .contains(&"003_77a3382a7273a2e2/en".to_string()));
    assert_eq!(site.ids(Lang::Zh).len(), 4);
}

#[test]
fn rejected_files_are_recorded_and_not_reexamined_until_changed() {
    let mut site = Site::empty("[input]\nmax_file_bytes = 64\n");
    std::fs::write(site.inbox("empty.txt"), "").expect("write");
    std::fs::write(site.inbox("big.txt"), "会议召开。".repeat(20)).expect("write");
    std::fs::write(site.inbox("ok.txt"), "会议召开。").expect("write");
    let first = reconcile(&site.config, &mut site.store, 1_000).expect("reconcile");
    let reasons: Vec<(&str, &str)> = first
        .rejected
        .iter()
        .map(|(name, reason)| (name.as_str(), reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("big.txt", "file is 300 bytes, over the limit of 64 bytes"),
            ("empty.txt", "file is empty"),
        ]
    );
    assert_eq!(first.published, ["ok.txt"]);
    let again = reconcile(&site.config, &mut site.store, 2_000).expect("again");
    assert!(again.rejected.is_empty());
    assert_eq!(again.n_unchanged, 3);
    std::fs::write(site.inbox("empty.txt"), "The meeting opened.").expect("fill it");
    let fixed = reconcile(&site.config, &mut site.store, 3_000).expect("after the fix");
    assert_eq!(fixed.published, ["empty.txt"]);
    assert_eq!(
        site.store
            .file("empty.txt")
            .expect("query")
            .expect("known")
            .rejected,
        None
    );
}

#[test]
fn the_same_content_twice_is_published_once() {
    let mut site = Site::empty("");
    std::fs::write(site.inbox("a.txt"), "会议召开。\nThe meeting opened.").expect("write");
    reconcile(&site.config, &mut site.store, 1_000).expect("reconcile");
    std::fs::copy(site.inbox("a.txt"), site.inbox("b.txt")).expect("copy");
    let done = reconcile(&site.config, &mut site.store, 2_000).expect("reconcile");
    assert_eq!(
        done.duplicates,
        [("b.txt".to_string(), "a.txt".to_string())]
    );
    assert_eq!(site.ids(Lang::Zh), ["a/zh"]);
    // When the original goes, the copy stands alone and is published.
    std::fs::remove_file(site.inbox("a.txt")).expect("delete the original");
    let done = reconcile(&site.config, &mut site.store, 3_000).expect("reconcile");
    assert_eq!(done.removed, ["a.txt"]);
    assert_eq!(done.published, ["b.txt"]);
    assert_eq!(site.ids(Lang::Zh), ["b/zh"]);
}
