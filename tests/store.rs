//! The state store on a real SQLite file in a temporary folder: persistence, ids that
//! never change, retraction, duplicates and order.

use chrono::NaiveDate;
use twinfeed::config::Edition;
use twinfeed::formatter::lang::LangTag;
use twinfeed::store::{DigestPart, FileRecord, Lang, NewDigest, NewItem, Store};

fn record(name: &str, hash: &str, first_seen: i64, last_changed: i64) -> FileRecord {
    FileRecord {
        name: name.into(),
        size: 100,
        mtime_ns: last_changed * 1_000_000_000,
        hash: hash.into(),
        first_seen,
        last_changed,
        rejected: None,
        duplicate_of: None,
    }
}

fn item(lang: Lang, title: &str, published: i64) -> NewItem {
    NewItem {
        lang,
        tag: match lang {
            Lang::Zh => LangTag::ZhHant,
            Lang::En => LangTag::En,
        },
        title: title.into(),
        title_explicit: false,
        summary: format!("{title} summary"),
        paragraphs: vec![format!("{title} paragraph"), "第二段。".into()],
        date: NaiveDate::from_ymd_opt(2020, 8, 4),
        source: Some("人民日报".into()),
        keywords: vec!["外办".into(), "外事".into()],
        published,
    }
}

fn temp_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("state/twinfeed.db");
    (folder, path)
}

#[test]
fn items_survive_a_reopen_with_their_ids() {
    let (_folder, path) = temp_store();
    {
        let mut store = Store::open(&path).expect("open a new store");
        assert_eq!(store.schema_version().expect("version"), 5);
        let items = [item(Lang::Zh, "会议", 10), item(Lang::En, "Meeting", 10)];
        store
            .save_file(&record("000_fb95044e7f3821d4.txt", "h1", 10, 10), &items)
            .expect("save");
    }
    let store = Store::open(&path).expect("reopen");
    let zh = store.newest_items(Lang::Zh, 10).expect("zh items");
    assert_eq!(zh.len(), 1);
    assert_eq!(zh[0].id, "000_fb95044e7f3821d4/zh");
    assert_eq!(zh[0].item, item(Lang::Zh, "会议", 10));
    assert_eq!(zh[0].updated, 10);
    let en = store.newest_items(Lang::En, 10).expect("en items");
    assert_eq!(en[0].id, "000_fb95044e7f3821d4/en");
    assert_eq!(
        store
            .sibling_id("000_fb95044e7f3821d4.txt", Lang::En)
            .expect("sibling"),
        Some("000_fb95044e7f3821d4/zh".into())
    );
    let file = store.file("000_fb95044e7f3821d4.txt").expect("query");
    assert_eq!(file, Some(record("000_fb95044e7f3821d4.txt", "h1", 10, 10)));
}

#[test]
fn an_edit_keeps_ids_moves_updated_and_retracts_a_lost_language() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    let both = [item(Lang::Zh, "会议", 10), item(Lang::En, "Meeting", 10)];
    store
        .save_file(&record("a.txt", "h1", 10, 10), &both)
        .expect("save");
    let edited = [item(Lang::Zh, "会议(更新)", 10)];
    store
        .save_file(&record("a.txt", "h2", 99, 50), &edited)
        .expect("save edit");
    let zh = store.newest_items(Lang::Zh, 10).expect("zh");
    assert_eq!(zh[0].id, "a/zh");
    assert_eq!(zh[0].item.title, "会议(更新)");
    assert_eq!(zh[0].updated, 50);
    assert!(store.newest_items(Lang::En, 10).expect("en").is_empty());
    // First seen is kept from the first record, whatever a later record says.
    let file = store.file("a.txt").expect("query").expect("known");
    assert_eq!(
        (file.first_seen, file.last_changed, file.hash.as_str()),
        (10, 50, "h2")
    );
    // The English item comes back with the id it would have had.
    store
        .save_file(&record("a.txt", "h3", 10, 60), &both)
        .expect("save again");
    assert_eq!(store.newest_items(Lang::En, 10).expect("en")[0].id, "a/en");
}

#[test]
fn files_sharing_a_stem_get_distinct_ids() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    let zh = [item(Lang::Zh, "一", 10)];
    store
        .save_file(&record("a.txt", "h1", 10, 10), &zh)
        .expect("save a.txt");
    store
        .save_file(&record("a.md", "h2", 11, 11), &zh)
        .expect("save a.md");
    let mut ids: Vec<(String, String)> = store
        .newest_items(Lang::Zh, 10)
        .expect("items")
        .into_iter()
        .map(|stored| (stored.file, stored.id))
        .collect();
    ids.sort();
    let expected = [("a.md", "a.md/zh"), ("a.txt", "a/zh")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, i)| (f.to_string(), i.to_string()))
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn removing_a_file_retracts_its_items() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    store
        .save_file(&record("a.txt", "h1", 10, 10), &[item(Lang::Zh, "一", 10)])
        .expect("save");
    assert!(store.remove_file("a.txt").expect("remove"));
    assert!(!store.remove_file("a.txt").expect("remove again"));
    assert!(store.newest_items(Lang::Zh, 10).expect("items").is_empty());
    assert_eq!(store.file("a.txt").expect("query"), None);
}

#[test]
fn duplicates_and_rejections_are_recorded_not_published() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    store
        .save_file(
            &record("a.txt", "same", 10, 10),
            &[item(Lang::Zh, "一", 10)],
        )
        .expect("save");
    assert_eq!(
        store.original_with_hash("same", "b.txt").expect("query"),
        Some("a.txt".into())
    );
    assert_eq!(
        store.original_with_hash("same", "a.txt").expect("query"),
        None
    );
    let mut duplicate = record("b.txt", "same", 20, 20);
    duplicate.duplicate_of = Some("a.txt".into());
    store.save_file(&duplicate, &[]).expect("save duplicate");
    let mut rejected = record("c.txt", "other", 30, 30);
    rejected.rejected = Some("file is empty".into());
    store.save_file(&rejected, &[]).expect("save rejected");
    assert_eq!(store.newest_items(Lang::Zh, 10).expect("items").len(), 1);
    let files = store.files().expect("files");
    assert_eq!(files.len(), 3);
    assert_eq!(files[2].rejected.as_deref(), Some("file is empty"));
    assert_eq!(
        store.original_with_hash("other", "d.txt").expect("query"),
        None
    );
}

#[test]
fn newest_first_ties_newest_stored_first_and_limited() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    for (name, published) in [("c.txt", 5), ("a.txt", 7), ("b.txt", 7), ("d.txt", 1)] {
        let items = [item(Lang::En, name, published)];
        store
            .save_file(&record(name, name, 1, 1), &items)
            .expect("save");
    }
    let newest = |store: &Store, limit: usize| -> Vec<String> {
        let items = store.newest_items(Lang::En, limit).expect("items");
        items.into_iter().map(|stored| stored.id).collect()
    };
    let ids = newest(&store, 3);
    // a and b share a second: b was stored later, so it comes first.
    assert_eq!(ids, ["b/en", "a/en", "c/en"]);
    // An edit keeps an item's place among its equals.
    store
        .save_file(&record("a.txt", "a2", 1, 2), &[item(Lang::En, "a.txt", 7)])
        .expect("save");
    assert_eq!(newest(&store, 2), ["b/en", "a/en"]);
}

#[test]
fn a_newer_schema_is_refused() {
    let (_folder, path) = temp_store();
    drop(Store::open(&path).expect("open"));
    let connection = rusqlite::Connection::open(&path).expect("raw open");
    connection
        .pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(connection);
    let error = Store::open(&path).err().expect("a newer schema is refused");
    let message = format!("{error:#}");
    assert!(message.contains("version 99"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

fn digest(period: &str, items: Vec<String>, baseline: Option<i64>) -> NewDigest {
    NewDigest {
        period: period.into(),
        created: 1000,
        key: format!("key-{period}"),
        n_zh: 0,
        n_en: items.len(),
        parts: vec![DigestPart {
            edition: Edition::En,
            subject: "News".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
        }],
        recipients: vec![("reader@example.org".into(), Edition::En)],
        items,
        baseline,
    }
}

#[test]
fn a_digest_carries_its_items_once_and_its_period_once() {
    let (_folder, path) = temp_store();
    let mut store = Store::open(&path).expect("open");
    // Seen long before the first digest: never news.
    store
        .save_file(
            &record("old.txt", "h0", 10, 10),
            &[item(Lang::En, "Old", 10)],
        )
        .expect("save");
    store
        .save_file(
            &record("new.txt", "h1", 500, 500),
            &[item(Lang::En, "New", 500)],
        )
        .expect("save");
    let ids = |items: Vec<twinfeed::store::StoredItem>| -> Vec<String> {
        items.into_iter().map(|stored| stored.id).collect()
    };
    let candidates = ids(store.undigested_items(Some(400)).expect("query"));
    assert_eq!(candidates, ["new/en"]);
    let first = digest("2026-11-22T00:00:00Z", candidates, Some(400));
    let id = store
        .save_digest(&first)
        .expect("save")
        .expect("a new digest");
    assert_eq!(
        store.save_digest(&first).expect("save again"),
        None,
        "a period twice"
    );
    assert!(
        store.undigested_items(None).expect("query").is_empty(),
        "old one baselined"
    );
    // An edit keeps the item in its digest; a new file is news.
    store
        .save_file(
            &record("new.txt", "h2", 500, 600),
            &[item(Lang::En, "New, edited", 500)],
        )
        .expect("edit");
    store
        .save_file(
            &record("later.txt", "h3", 700, 700),
            &[item(Lang::En, "Later", 700)],
        )
        .expect("save");
    assert_eq!(
        ids(store.undigested_items(None).expect("query")),
        ["later/en"]
    );
    // The delivery is due, with a token the server can find again; a forged one is not.
    let due = store.due_deliveries(1000).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].digest.id, id);
    let token = due[0].token.clone();
    assert_eq!(
        store
            .opt_out("0123456789abcdef0123456789abcdef", 1001)
            .expect("opt out"),
        None
    );
    assert!(!store.opted_out("reader@example.org").expect("query"));
    store
        .mark_retry(id, "reader@example.org", "451 try later", 2000)
        .expect("retry");
    assert!(store.due_deliveries(1500).expect("due").is_empty());
    assert_eq!(store.next_delivery_time().expect("next"), Some(2000));
    store
        .mark_sent(id, "reader@example.org", 2001)
        .expect("sent");
    // A finished delivery never moves again.
    store
        .mark_failed(id, "reader@example.org", "late", 2002)
        .expect("no-op");
    let outbox = store.outbox().expect("outbox");
    assert_eq!(
        (outbox.n_pending, outbox.n_sent, outbox.failed.len()),
        (0, 1, 0)
    );
    assert_eq!(
        store.opt_out(&token, 3000).expect("opt out").as_deref(),
        Some("reader@example.org")
    );
    assert!(
        store.opted_out("READER@example.org").expect("query"),
        "addresses ignore case"
    );
}
