//! `twinfeed build` end to end: the real binary on a temporary site, every feed parsed
//! back by real parsers (feed-rs, and the atom_syndication and rss readers).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::fixtures;

struct Site {
    folder: tempfile::TempDir,
}

impl Site {
    fn with_seeds(config: &str) -> Site {
        let site = Site {
            folder: tempfile::tempdir().expect("a temporary folder"),
        };
        std::fs::create_dir_all(site.path("inbox")).expect("create the inbox");
        for entry in std::fs::read_dir(fixtures().join("seeds")).expect("the seeds") {
            let path = entry.expect("a seed").path();
            let name = path.file_name().expect("a name");
            std::fs::copy(&path, site.path("inbox").join(name)).expect("copy");
        }
        site.write_config(config);
        site
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.folder.path().join(relative)
    }

    fn write_config(&self, config: &str) {
        std::fs::write(self.path("twinfeed.toml"), config).expect("write the config");
    }

    /// Runs `twinfeed build`; returns stderr.
    fn build(&self) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
            .arg("build")
            .arg("--config")
            .arg(self.path("twinfeed.toml"))
            .output()
            .expect("the twinfeed binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "build failed: {stderr}");
        stderr
    }

    fn read(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.path("public").join(relative)).expect("an output file")
    }

    fn parse(&self, relative: &str) -> feed_rs::model::Feed {
        feed_rs::parser::parse(&self.read(relative)[..])
            .unwrap_or_else(|error| panic!("{relative} does not parse: {error}"))
    }
}

fn ids(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries.iter().map(|entry| entry.id.clone()).collect()
}

#[test]
fn every_feed_parses_with_ids_languages_order_and_links() {
    let site = Site::with_seeds("");
    site.build();
    for (lang, n_entries) in [("zh", 5), ("en", 4)] {
        let atom = site.parse(&format!("{lang}/atom.xml"));
        let rss = site.parse(&format!("{lang}/rss.xml"));
        let json = site.parse(&format!("{lang}/feed.json"));
        assert_eq!(atom.entries.len(), n_entries, "{lang}");
        assert_eq!(ids(&atom), ids(&rss), "{lang}: Atom and RSS ids differ");
        assert_eq!(ids(&atom), ids(&json), "{lang}: Atom and JSON ids differ");
        for entry in &atom.entries {
            assert!(entry.id.starts_with("tag:twinfeed,2026:"), "{}", entry.id);
            assert!(entry.id.ends_with(&format!("/{lang}")), "{}", entry.id);
            let link = &entry.links[0].href;
            assert!(
                link.starts_with(&format!("http://127.0.0.1:8080/{lang}/")),
                "{link}"
            );
            assert!(entry.published.is_some() && entry.title.is_some());
        }
        // Newest first.
        let dates: Vec<_> = atom.entries.iter().map(|entry| entry.published).collect();
        let mut sorted = dates.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(dates, sorted, "{lang}");
        assert_eq!(atom.language.as_deref(), Some(lang));
        assert_eq!(rss.language.as_deref(), Some(lang));
    }
}

#[test]
fn atom_entries_carry_their_script_and_a_sibling_link() {
    let site = Site::with_seeds("");
    site.build();
    let atom = atom_syndication::Feed::read_from(&site.read("zh/atom.xml")[..]).expect("Atom");
    let seed_000 = atom
        .entries
        .iter()
        .find(|entry| entry.id.ends_with("000_fb95044e7f3821d4/zh"))
        .expect("seed 000");
    assert_eq!(seed_000.title.lang.as_deref(), Some("zh-Hant"));
    let hreflangs: Vec<Option<&str>> = seed_000
        .links
        .iter()
        .map(|link| link.hreflang.as_deref())
        .collect();
    assert_eq!(hreflangs, [Some("zh-Hant"), Some("en")]);
    assert_eq!(
        seed_000.links[1].href,
        "http://127.0.0.1:8080/en/000_fb95044e7f3821d4.html"
    );
    let seed_002 = atom
        .entries
        .iter()
        .find(|entry| entry.id.ends_with("002_08a97c52deef5f3b/zh"))
        .expect("seed 002");
    assert_eq!(seed_002.title.lang.as_deref(), Some("zh-Hans"));
    let terms: Vec<&str> = seed_002
        .categories
        .iter()
        .map(|c| c.term.as_str())
        .collect();
    assert_eq!(terms, ["外办", "外事", "市政府"]);
    let chinese_only = atom
        .entries
        .iter()
        .find(|entry| entry.id.ends_with("004_91f0465ba0884ecc/zh"))
        .expect("seed 004");
    assert_eq!(chinese_only.links.len(), 1, "no English sibling");
}

#[test]
fn a_second_build_is_byte_identical_and_writes_nothing() {
    let site = Site::with_seeds("");
    site.build();
    let before: Vec<Vec<u8>> = ["zh/atom.xml", "en/rss.xml", "zh/feed.json"]
        .iter()
        .map(|file| site.read(file))
        .collect();
    let modified = std::fs::metadata(site.path("public/zh/atom.xml"))
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stderr = site.build();
    assert!(
        stderr.contains("0 files written, 10 unchanged, 0 deleted"),
        "{stderr}"
    );
    let after: Vec<Vec<u8>> = ["zh/atom.xml", "en/rss.xml", "zh/feed.json"]
        .iter()
        .map(|file| site.read(file))
        .collect();
    assert_eq!(before, after);
    let still = std::fs::metadata(site.path("public/zh/atom.xml"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(modified, still);
}

#[test]
fn ids_survive_a_base_url_change_and_links_follow_it() {
    let site = Site::with_seeds("");
    site.build();
    let before = ids(&site.parse("en/atom.xml"));
    site.write_config("[site]\nbase_url = \"https://news.example.org/feeds/\"\n");
    site.build();
    let atom = site.parse("en/atom.xml");
    assert_eq!(ids(&atom), before);
    assert!(atom.entries[0].links[0]
        .href
        .starts_with("https://news.example.org/feeds/en/"));
}

#[test]
fn markup_and_cdata_terminators_in_text_survive_as_text() {
    let site = Site::with_seeds("");
    // The entity decodes to the text `<script>`; a real tag would be dropped as HTML.
    let text = "The office said ]]> and &lt;script&gt; are text. More follows here.\n";
    std::fs::write(site.path("inbox/hostile.txt"), text).expect("write");
    site.build();
    let rss = rss::Channel::read_from(&site.read("en/rss.xml")[..]).expect("RSS parses");
    let item = rss
        .items
        .iter()
        .find(|item| {
            item.guid
                .as_ref()
                .is_some_and(|g| g.value.ends_with("hostile/en"))
        })
        .expect("the hostile item");
    // The plain summary goes into CDATA raw: the writer must split it at `]]>`.
    let description = item.description.as_deref().expect("a description");
    assert!(
        description.contains("]]> and <script> are text"),
        "{description}"
    );
    // The HTML content escapes both, so a reader shows them as text.
    let content = item.content.as_deref().expect("content:encoded");
    assert!(
        content.contains("]]&gt; and &lt;script&gt; are text"),
        "{content}"
    );
    let atom = site.parse("en/atom.xml");
    assert!(atom
        .entries
        .iter()
        .any(|entry| entry.id.ends_with("hostile/en")));
}

#[test]
fn a_deleted_file_leaves_every_feed() {
    let site = Site::with_seeds("");
    site.build();
    std::fs::remove_file(site.path("inbox/001_1fbc44d11a2c24ea.txt")).expect("delete");
    site.build();
    for file in ["zh/atom.xml", "en/rss.xml", "zh/feed.json"] {
        let feed = site.parse(file);
        assert!(
            !ids(&feed)
                .iter()
                .any(|id| id.contains("001_1fbc44d11a2c24ea")),
            "{file} still lists the deleted file"
        );
    }
    assert!(Path::new(&site.path("public/zh/atom.xml")).exists());
}

fn page(site: &Site, relative: &str) -> String {
    String::from_utf8(site.read(relative)).expect("a page is UTF-8")
}

#[test]
fn every_item_has_a_page_in_its_script_linking_its_sibling() {
    let site = Site::with_seeds("");
    site.build();
    let zh = page(&site, "zh/000_fb95044e7f3821d4.html");
    assert!(zh.contains(r#"<html lang="zh-Hant">"#), "{zh}");
    assert!(
        zh.contains(r#"hreflang="en" href="http://127.0.0.1:8080/en/000_fb95044e7f3821d4.html""#)
    );
    assert!(
        zh.contains("<p>8月21日,市政府外辦黨組書記"),
        "paragraphs are on the page"
    );
    let en = page(&site, "en/002_08a97c52deef5f3b.html");
    assert!(en.contains(r#"<html lang="en">"#));
    assert!(
        en.contains("2020-08-04"),
        "the date in the site's time zone"
    );
    assert!(!Path::new(&site.path("public/en/004_91f0465ba0884ecc.html")).exists());
    for lang in ["zh", "en"] {
        let index = page(&site, &format!("{lang}/index.html"));
        assert!(index.contains(r#"type="application/atom+xml""#), "{index}");
        assert!(index.contains(&format!(
            "http://127.0.0.1:8080/{lang}/002_08a97c52deef5f3b.html"
        )));
    }
    let home = page(&site, "index.html");
    for url in [
        "http://127.0.0.1:8080/zh/atom.xml",
        "http://127.0.0.1:8080/en/rss.xml",
    ] {
        assert!(home.contains(&format!(r#"href="{url}""#)), "{home}");
    }
    let opml = page(&site, "feeds.opml");
    assert_eq!(opml.matches("<outline ").count(), 2, "{opml}");
    assert!(opml.contains(r#"xmlUrl="http://127.0.0.1:8080/en/atom.xml""#));
}

#[test]
fn markup_in_a_title_is_escaped_on_its_page() {
    let site = Site::with_seeds("");
    std::fs::write(
        site.path("inbox/markup.txt"),
        "Fish &amp; chips &lt;b&gt;bold&lt;/b&gt; \"quoted\"\nThe shop opened on Monday.\n",
    )
    .expect("write");
    site.build();
    let html = page(&site, "en/markup.html");
    let heading = "<h1>Fish &amp; chips &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot;</h1>";
    assert!(html.contains(heading), "{html}");
    assert!(!html.contains("<b>bold</b>"));
}

#[test]
fn a_deleted_file_loses_its_pages() {
    let site = Site::with_seeds("");
    site.build();
    assert!(site.path("public/en/003_77a3382a7273a2e2.html").exists());
    std::fs::remove_file(site.path("inbox/003_77a3382a7273a2e2.txt")).expect("delete");
    let stderr = site.build();
    assert!(stderr.contains("2 deleted"), "{stderr}");
    assert!(!site.path("public/en/003_77a3382a7273a2e2.html").exists());
    assert!(!site.path("public/zh/003_77a3382a7273a2e2.html").exists());
    assert!(site.path("public/zh/000_fb95044e7f3821d4.html").exists());
}

#[test]
fn an_edited_template_remakes_every_page() {
    let site = Site::with_seeds("");
    site.build();
    std::fs::create_dir_all(site.path("templates")).expect("mkdir");
    std::fs::write(
        site.path("templates/article.html"),
        "<!DOCTYPE html><html lang=\"{{ item.lang }}\"><title>{{ item.title }}</title><p>custom-template</p></html>",
    )
    .expect("write a template");
    site.build();
    for relative in [
        "zh/004_91f0465ba0884ecc.html",
        "en/000_fb95044e7f3821d4.html",
    ] {
        assert!(
            page(&site, relative).contains("custom-template"),
            "{relative}"
        );
    }
    std::fs::write(site.path("templates/article.html"), "{% if %}").expect("break it");
    let output = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["check", "--config"])
        .arg(site.path("twinfeed.toml"))
        .output()
        .expect("check runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("article.html"), "{stderr}");
}

/// Whole outputs for the seeds at a fixed clock: a reviewer sees every byte a reader
/// gets, and any change to it shows in `cargo insta review`.
#[test]
fn whole_feeds_for_the_seeds_at_a_fixed_clock() {
    let site = Site::with_seeds("");
    let config = twinfeed::config::Config::load(&site.path("twinfeed.toml")).expect("config");
    twinfeed::build::build(&config, 1_700_000_000).expect("build");
    for relative in ["zh/atom.xml", "en/rss.xml", "en/feed.json", "feeds.opml"] {
        let text = String::from_utf8(site.read(relative)).expect("UTF-8");
        insta::assert_snapshot!(relative.replace('/', "_"), text);
    }
}

#[test]
fn script_variant_feeds_convert_the_chinese_text() {
    let site = Site::with_seeds("[feed]\nzh_variants = [\"hans\", \"hant\", \"hans\"]\n");
    site.build();
    let hans = atom_syndication::Feed::read_from(&site.read("zh-Hans/atom.xml")[..]).expect("Atom");
    let hant = atom_syndication::Feed::read_from(&site.read("zh-Hant/atom.xml")[..]).expect("Atom");
    assert_eq!(hans.lang.as_deref(), Some("zh-Hans"));
    let title = |feed: &atom_syndication::Feed, stem: &str| {
        let entry = feed
            .entries
            .iter()
            .find(|entry| entry.id.contains(stem))
            .expect("the entry");
        (entry.title.value.clone(), entry.title.lang.clone())
    };
    // Seed 000 is Traditional: the Simplified feed converts it.
    let (text, lang) = title(&hans, "000_fb95044e7f3821d4");
    assert!(
        text.starts_with("为深入学习《习近平谈治国理政》第三卷"),
        "{text}"
    );
    assert_eq!(lang.as_deref(), Some("zh-Hans"));
    // Seed 002 is Simplified: the Traditional feed converts it.
    let (text, lang) = title(&hant, "002_08a97c52deef5f3b");
    assert!(text.starts_with("市政府外辦黨組召開會議"), "{text}");
    assert_eq!(lang.as_deref(), Some("zh-Hant"));
    // Same ids as the zh feed, links to the same pages.
    let zh = site.parse("zh/atom.xml");
    assert_eq!(ids(&zh), ids(&site.parse("zh-Hans/rss.xml")));
    assert_eq!(ids(&zh), ids(&site.parse("zh-Hant/feed.json")));
    assert!(!site.path("public/zh-Hans/index.html").exists());
}

#[test]
fn pages_lost_or_planted_between_builds_are_put_right() {
    let site = Site::with_seeds("");
    site.build();
    // Two builds with nothing changed: the second skips the page folders entirely.
    site.build();
    let page = site.path("public/en/003_77a3382a7273a2e2.html");
    let before = std::fs::read(&page).expect("the page");
    std::fs::remove_file(&page).expect("lose a page");
    let planted = site.path("public/zh/999_not_an_item.html");
    std::fs::write(&planted, "stale").expect("plant a page");
    let stderr = site.build();
    assert!(stderr.contains("1 files written"), "{stderr}");
    assert!(stderr.contains("1 deleted"), "{stderr}");
    assert_eq!(std::fs::read(&page).expect("the page again"), before);
    assert!(!planted.exists());
    // And quiet again afterwards.
    let stderr = site.build();
    assert!(stderr.contains("0 files written"), "{stderr}");
}

#[test]
fn a_large_inbox_read_in_parallel_batches_is_stored_in_name_order() {
    // Enough files for several read batches and page batches (the pipelined paths),
    // with copies and rejects spread through them: a copy must name the earliest file
    // by name as its original whatever thread read it, exactly as a one-by-one pass.
    let site = Site::with_seeds("");
    let inbox = site.path("inbox");
    let mut copies = Vec::new();
    let mut rejects = Vec::new();
    for n in 0..400 {
        let name = format!("bulk-{n:04}.txt");
        let bytes = if n % 37 == 36 {
            rejects.push(name.clone());
            b"  \n\n \t \n".to_vec()
        } else if n % 29 == 28 {
            let original = format!("bulk-{:04}.txt", n - 20);
            copies.push((name.clone(), original.clone()));
            std::fs::read(inbox.join(&original)).expect("an earlier file")
        } else {
            crate::daemon::article(
                &format!("Bulk story {n}"),
                &format!("The body of story {n}."),
            )
        };
        std::fs::write(inbox.join(&name), bytes).expect("write a file");
    }
    let stderr = site.build();
    let state = rusqlite::Connection::open(site.path("state/twinfeed.db")).expect("the state");
    let query = |sql: &str| -> Vec<(String, String)> {
        let mut statement = state.prepare(sql).expect("a query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let found_copies =
        query("SELECT name, duplicate_of FROM files WHERE duplicate_of IS NOT NULL ORDER BY name");
    assert_eq!(found_copies, copies, "{stderr}");
    let found_rejects: Vec<String> =
        query("SELECT name, rejected FROM files WHERE rejected IS NOT NULL ORDER BY name")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
    assert_eq!(found_rejects, rejects);
    // Items were created in name order (the feeds' tie-break relies on it).
    let by_seq: Vec<String> = query("SELECT file, lang FROM items ORDER BY seq")
        .into_iter()
        .map(|(file, _)| file)
        .collect();
    assert!(
        by_seq.windows(2).all(|pair| pair[0] <= pair[1]),
        "{by_seq:?}"
    );
    // Every item has its page, and all were recorded as written: nothing left to do.
    let items = query("SELECT id, file FROM items");
    for (id, _) in &items {
        let (stem, lang) = id
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("an id with a language: {id}"));
        assert!(
            site.path(&format!("public/{lang}/{stem}.html")).exists(),
            "no page for {id}"
        );
    }
    let n_bulk = 400 - copies.len() - rejects.len();
    assert!(items.len() >= 2 * n_bulk, "{} items", items.len());
    let stderr = site.build();
    assert!(stderr.contains("0 files written"), "{stderr}");
}

#[test]
fn pages_lost_or_planted_in_a_large_archive_are_put_right_batch_by_batch() {
    // Enough items for several page batches: the build reads the items a batch at a
    // time and must still find a lost page in any batch, and a planted one anywhere.
    let site = Site::with_seeds("");
    for n in 0..600 {
        let article = crate::daemon::article(&format!("Story {n}"), &format!("Body {n}."));
        std::fs::write(site.path(&format!("inbox/bulk-{n:04}.txt")), article).expect("write");
    }
    site.build();
    let lost: Vec<PathBuf> = [0, 317, 599]
        .iter()
        .map(|n| site.path(&format!("public/en/bulk-{n:04}.html")))
        .collect();
    let before: Vec<Vec<u8>> = lost
        .iter()
        .map(|page| std::fs::read(page).expect("a page"))
        .collect();
    for page in &lost {
        std::fs::remove_file(page).expect("lose a page");
    }
    let planted = [
        site.path("public/en/000_planted.html"),
        site.path("public/zh/zzz_planted.html"),
    ];
    for page in &planted {
        std::fs::write(page, "stale").expect("plant a page");
    }
    let stderr = site.build();
    assert!(stderr.contains(" 3 files written"), "{stderr}");
    assert!(stderr.contains(" 2 deleted"), "{stderr}");
    for (page, before) in lost.iter().zip(&before) {
        assert_eq!(&std::fs::read(page).expect("the page again"), before);
    }
    assert!(planted.iter().all(|page| !page.exists()));
    let stderr = site.build();
    assert!(stderr.contains(" 0 files written"), "{stderr}");
}

#[test]
fn temporary_files_of_an_interrupted_run_are_removed() {
    let site = Site::with_seeds("");
    site.build();
    // Left by writers that were killed: a process id that no process has now.
    let gone = (1..u32::MAX)
        .map(|n| u32::MAX - n)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .expect("a process id nobody has");
    let left = [
        format!("public/.index.html.{gone}.tmp"),
        format!("public/zh/.003_77a3382a7273a2e2.html.{gone}.tmp"),
        format!("public/en/.{gone}.12.old.tmp"),
    ];
    // A live process's (this test's) file, and a hidden file twinfeed did not make.
    let kept = [
        format!("public/en/.rss.xml.{}.tmp", std::process::id()),
        "public/zh/.notes.tmp".to_string(),
    ];
    for relative in left.iter().chain(&kept) {
        std::fs::write(site.path(relative), "partial").expect("plant a file");
    }
    let stderr = site.build();
    for relative in &left {
        assert!(!site.path(relative).exists(), "{relative} is still there");
    }
    for relative in &kept {
        assert!(site.path(relative).exists(), "{relative} was removed");
    }
    assert!(
        stderr.contains("temporary files left by an interrupted run"),
        "{stderr}"
    );
}
