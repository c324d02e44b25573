//! The reliability suite: the real daemon killed with SIGKILL at random moments while it
//! ingests, fed hostile files, and run into faults (a locked state database, an output
//! folder it cannot write, a full disk). After each, the outputs on disk must parse,
//! every link in a feed must lead to a page, and every file must be published once.
//!
//! Trials are bounded for `cargo test`: TWINFEED_TRIALS sets how many kills of each kind
//! (default 16); TWINFEED_TRIALS_SEED replays one run's random moments (each run prints its own).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::daemon::{article, drop_by_rename, wait_for, Daemon};

/// The number of kill trials for this run.
pub fn trials() -> usize {
    std::env::var("TWINFEED_TRIALS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(16)
}

/// splitmix64, seeded from TWINFEED_TRIALS_SEED or the clock; the seed is printed so a
/// failing run can be replayed.
pub struct Random(u64);

impl Random {
    pub fn new(what: &str) -> Random {
        let seed = std::env::var("TWINFEED_TRIALS_SEED")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64)
            });
        println!("{what}: TWINFEED_TRIALS_SEED={seed}");
        Random(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

const BASE_URL: &str = "http://127.0.0.1:8080/";

/// Parses every feed of both languages that exists under `public` and checks that each
/// entry's link leads to a page on disk; returns the entry ids per feed file. A torn or
/// half-written feed fails to parse; a feed published before its pages fails the links.
pub fn check_outputs(public: &Path) -> BTreeMap<String, Vec<String>> {
    let mut ids = BTreeMap::new();
    for lang in ["zh", "en"] {
        for name in ["atom.xml", "rss.xml", "feed.json"] {
            let relative = format!("{lang}/{name}");
            let Ok(bytes) = std::fs::read(public.join(&relative)) else {
                continue;
            };
            let feed = feed_rs::parser::parse(&bytes[..])
                .unwrap_or_else(|error| panic!("{relative} does not parse: {error}"));
            for entry in &feed.entries {
                let link = entry
                    .links
                    .first()
                    .unwrap_or_else(|| panic!("{relative}: an entry without a link"));
                let page = link
                    .href
                    .strip_prefix(BASE_URL)
                    .unwrap_or_else(|| panic!("{relative}: a link off the site: {}", link.href));
                assert!(
                    public.join(page).is_file(),
                    "{relative} links {page}, which is not on disk"
                );
            }
            ids.insert(
                relative,
                feed.entries.iter().map(|entry| entry.id.clone()).collect(),
            );
        }
    }
    ids
}

/// Each stored file's item ids, read from the state database without disturbing it.
fn stored_ids(state: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Ok(connection) =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return ids;
    };
    let Ok(mut statement) = connection.prepare("SELECT file, id FROM items") else {
        return ids; // not created yet
    };
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))
        .expect("items");
    for row in rows {
        let (file, id) = row.expect("an item");
        ids.entry(file).or_default().insert(id);
    }
    ids
}

#[test]
fn killed_at_random_moments_during_an_ingest_of_a_thousand_files() {
    const N_FILES: usize = 1000;
    let mut random = Random::new("ingest kills");
    let n_trials = trials().max(1);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let root = folder.path();
    let (inbox, staging) = (root.join("inbox"), root.join("staging"));
    std::fs::create_dir_all(&inbox).expect("the inbox");
    std::fs::create_dir_all(&staging).expect("staging");
    for n in 0..N_FILES {
        let text = article(
            &format!("Crash story {n}"),
            &format!("Body of crash story {n}."),
        );
        std::fs::write(staging.join(format!("crash-{n:04}.txt")), text).expect("write");
    }
    let config = root.join("twinfeed.toml");
    std::fs::write(
        &config,
        "[serve]\nlisten = \"127.0.0.1:0\"\n[watch]\nsettle_ms = 50\n",
    )
    .expect("the config");
    let log = root.join("twinfeed.log");
    let mut first_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut n_moved, mut n_mid_ingest) = (0, 0);
    for trial in 0..n_trials {
        // A wave of files lands before each start, so that every start has work to be
        // killed in: reading files, storing them, writing pages, writing feeds.
        let wave = N_FILES.div_ceil(n_trials);
        for n in n_moved..(n_moved + wave).min(N_FILES) {
            let name = format!("crash-{n:04}.txt");
            std::fs::rename(staging.join(&name), inbox.join(&name)).expect("rename in");
        }
        n_moved = (n_moved + wave).min(N_FILES);
        let mut child = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("the log"),
            )
            .spawn()
            .expect("twinfeed starts");
        let kill_after = random.below(300);
        std::thread::sleep(Duration::from_millis(kill_after));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        // Whatever moment it died at, what is on disk is whole and consistent.
        check_outputs(&root.join("public"));
        let stored = stored_ids(&root.join("state/twinfeed.db"));
        let n_stored = stored.len();
        if n_stored < n_moved {
            n_mid_ingest += 1;
        }
        println!(
            "trial {trial}: killed after {kill_after} ms, {n_stored} of {n_moved} files stored"
        );
        for (file, ids) in stored {
            let first = first_ids.entry(file.clone()).or_insert_with(|| ids.clone());
            assert_eq!(
                *first, ids,
                "{file}'s ids changed after a kill (trial {trial})"
            );
        }
    }
    for n in n_moved..N_FILES {
        let name = format!("crash-{n:04}.txt");
        std::fs::rename(staging.join(&name), inbox.join(&name)).expect("rename in");
    }
    // A last start, left to finish: every file published once, with its first ids.
    let config_text = std::fs::read_to_string(&config).expect("the config");
    let mut daemon = Daemon::start_in(folder, &config_text);
    let state = daemon.path("state/twinfeed.db");
    let ids = wait_for(Duration::from_secs(120), "all files stored", || {
        let ids = stored_ids(&state);
        (ids.len() == N_FILES).then_some(ids)
    });
    assert_eq!(daemon.stop(), Some(0));
    for (file, file_ids) in &ids {
        assert_eq!(file_ids.len(), 2, "{file}: {file_ids:?}");
        if let Some(first) = first_ids.get(file) {
            assert_eq!(first, file_ids, "{file}'s ids changed");
        }
        for id in file_ids {
            let (stem, lang) = id.rsplit_once('/').expect("an id with a language");
            assert!(daemon.path(&format!("public/{lang}/{stem}.html")).is_file());
        }
    }
    let feeds = check_outputs(&daemon.path("public"));
    for (feed, entries) in &feeds {
        assert_eq!(entries.len(), 50, "{feed} is not full");
        let distinct: BTreeSet<&String> = entries.iter().collect();
        assert_eq!(distinct.len(), entries.len(), "{feed} repeats an entry");
    }
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    // The killed runs left temporary files behind; the next run removes them all.
    let output = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["build", "--config"])
        .arg(&config)
        .output()
        .expect("twinfeed build runs");
    assert!(output.status.success(), "{output:?}");
    for folder in ["public", "public/zh", "public/en"] {
        let left: Vec<String> = std::fs::read_dir(daemon.path(folder))
            .expect("an output folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{folder}: {left:?}");
    }
    println!(
        "ingest kills: {n_trials} kills ({n_mid_ingest} with files waiting), {} files, {} feeds checked after each",
        ids.len(),
        feeds.len()
    );
}

/// Writes `bytes` as a file named `name` in `inbox` (directly, not by rename: hostile
/// writers do not follow the rules).
fn plant(inbox: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(inbox.join(name), bytes).expect("write a file");
}

#[test]
fn hostile_files_get_a_reason_and_the_daemon_keeps_publishing() {
    let mut daemon = Daemon::start("");
    let inbox = daemon.inbox();
    let outside = daemon.path("outside.txt");
    std::fs::write(
        &outside,
        article("Outside the inbox", "Never to be published."),
    )
    .expect("write");
    // Over the 10 MiB limit: refused unread.
    let story = article("Fifty megabytes", "A paragraph repeated. ");
    let mut huge = Vec::with_capacity(50 << 20);
    while huge.len() < 50 << 20 {
        huge.extend_from_slice(&story);
    }
    plant(&inbox, "huge.txt", &huge);
    // A million short lines, under the limit.
    let lines: String = (0..1_000_000).map(|n| format!("{}\n", n % 10)).collect();
    plant(
        &inbox,
        "million-lines.txt",
        format!("Million lines story\n\n{lines}").as_bytes(),
    );
    // Deeply nested markup, CDATA terminators, XML entities, bidi and zero-width marks.
    let nested = format!(
        "{}Nested markup story\n\nText inside a hundred thousand tags.{}",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    plant(&inbox, "nested.txt", nested.as_bytes());
    plant(
        &inbox,
        "cdata.txt",
        &article(
            "Terminator ]]> story <![CDATA[",
            "Body with ]]> and ]]]]><![CDATA[>.",
        ),
    );
    plant(
        &inbox,
        "entities.txt",
        &article(
            "Entity story &amp; &lol; &#0; &#x1F;",
            "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]> &lol2;",
        ),
    );
    plant(
        &inbox,
        "bidi.txt",
        &article(
            "Bidi \u{202E}story\u{202C} with\u{200B}zero\u{FEFF}width",
            "Isolates \u{2066}here\u{2069} and a right-to-left mark \u{200F}.",
        ),
    );
    plant(
        &inbox,
        "control.txt",
        b"Control story \x01\x02\x1b[31m red\x7f\n\nBody with a NUL \x00 and a bell \x07.\n",
    );
    let binary: Vec<u8> = (0..100_000u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    plant(&inbox, "binary.txt", &binary);
    plant(&inbox, "empty.txt", b"");
    std::os::unix::fs::symlink(&outside, inbox.join("link-out.txt")).expect("a symlink");
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("passwd.txt")).expect("a symlink");
    let fifo = inbox.join("fifo.txt");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let locked = inbox.join("no-permission.txt");
    plant(
        &inbox,
        "no-permission.txt",
        &article("Unreadable story", "Nobody may read this."),
    );
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod 000");
    // Files that vanish as soon as they appear, a few hundred times.
    for n in 0..300 {
        let name = inbox.join(format!("vanishing-{}.txt", n % 7));
        let _ = std::fs::write(&name, article(&format!("Vanishing {n}"), "Gone at once."));
        let _ = std::fs::remove_file(&name);
    }
    // The canary lands last: once it is published, the daemon went through the rest.
    drop_by_rename(
        &inbox,
        "zz-canary.txt",
        &article("Canary story", "Still publishing."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the English feed", |feed| {
        feed.entries.iter().any(|entry| {
            entry
                .title
                .as_ref()
                .is_some_and(|t| t.content == "Canary story")
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let home = daemon.get("/", &[]);
    assert_eq!(home.status, 200, "the daemon stopped serving");
    let feeds = check_outputs(&daemon.path("public"));
    assert_eq!(feeds.len(), 6);
    let log = daemon.log();
    for (name, reason) in [
        ("huge.txt", "rejected"),
        ("binary.txt", "rejected"),
        ("empty.txt", "rejected"),
        ("link-out.txt", "skipped: a symbolic link"),
        ("passwd.txt", "skipped: a symbolic link"),
        ("fifo.txt", "skipped: not a regular file"),
    ] {
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("/{name}: {reason}"))),
            "no '{reason}' for {name}: {log}"
        );
    }
    let running_as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !running_as_root {
        assert!(log.contains("no-permission.txt: cannot read"), "{log}");
    }
    let en = String::from_utf8(std::fs::read(daemon.path("public/en/rss.xml")).expect("rss"))
        .expect("UTF-8");
    assert!(
        !en.contains("Outside the inbox"),
        "a file outside the inbox was published"
    );
    assert!(
        !en.contains("root:x:0"),
        "a symlinked system file was published"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(daemon.stop(), Some(0));
}

/// Lands one article and waits until it is published: the outputs exist before a fault.
fn publish_first(daemon: &Daemon) {
    drop_by_rename(
        &daemon.inbox(),
        "first.txt",
        &article("First story", "Before."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the first article", |feed| {
        feed.entries.len() == 1
    });
}

/// Waits until the daemon logs that publishing failed (and that it will retry).
fn wait_for_failure(daemon: &Daemon) {
    wait_for(Duration::from_secs(30), "the failure to be logged", || {
        daemon.log().contains("publishing failed").then_some(())
    });
}

#[test]
fn a_locked_state_database_delays_publishing_and_loses_nothing() {
    let mut daemon = Daemon::start("");
    let state = daemon.path("state/twinfeed.db");
    let mut holder = rusqlite::Connection::open(&state).expect("open the state");
    let transaction = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .expect("an exclusive lock");
    drop_by_rename(
        &daemon.inbox(),
        "locked-out.txt",
        &article("Locked out story", "Waits."),
    );
    // The daemon waits 5 s for the lock, then reports and retries.
    wait_for_failure(&daemon);
    assert_eq!(daemon.get("/", &[]).status, 200, "serving stopped");
    transaction.rollback().expect("release the lock");
    daemon.wait_for_feed("/en/atom.xml", "the English feed", |feed| {
        feed.entries.len() == 1
    });
    check_outputs(&daemon.path("public"));
    assert!(daemon.log().contains("publishing works again"));
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn an_output_folder_that_cannot_be_written_delays_publishing_and_loses_nothing() {
    let mut daemon = Daemon::start("");
    publish_first(&daemon);
    // A file where the English folder was: nothing can be written under it (even as
    // root, unlike permissions).
    let en = daemon.path("public/en");
    let aside = daemon.path("en-aside");
    std::fs::rename(&en, &aside).expect("move the folder aside");
    std::fs::write(&en, b"in the way").expect("a file in the way");
    drop_by_rename(
        &daemon.inbox(),
        "second.txt",
        &article("Second story", "During."),
    );
    wait_for_failure(&daemon);
    assert_eq!(
        daemon.get("/zh/atom.xml", &[]).status,
        200,
        "serving stopped"
    );
    std::fs::remove_file(&en).expect("clear the way");
    std::fs::rename(&aside, &en).expect("the folder back");
    daemon.wait_for_feed("/en/atom.xml", "the English feed", |feed| {
        feed.entries.len() == 2
    });
    check_outputs(&daemon.path("public"));
    assert_eq!(daemon.stop(), Some(0));
}

/// Mounts a tmpfs of `size` on `folder`; false when this machine does not allow it.
fn mount_tmpfs(folder: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(folder)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_full_disk_delays_publishing_and_loses_nothing() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let public = folder.path().join("public");
    std::fs::create_dir_all(&public).expect("the output folder");
    std::fs::create_dir_all(folder.path().join("inbox")).expect("the inbox");
    if !mount_tmpfs(&public, "4m") {
        println!("SKIPPED: this machine cannot mount a tmpfs (RELIABILITY.md says how to run it)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(public.clone());
    let mut daemon = Daemon::start_in(folder, "");
    publish_first(&daemon);
    // Fill the disk, leaving a few KiB, then land articles bigger than that.
    let filler = public.join("filler.bin");
    let mut size = 4 << 20;
    while size > 4096 && std::fs::write(&filler, vec![0u8; size]).is_err() {
        size -= 16 << 10;
    }
    let long = "A long paragraph of the full-disk story. ".repeat(2000);
    for n in 0..3 {
        drop_by_rename(
            &daemon.inbox(),
            &format!("full-{n}.txt"),
            &article(&format!("Full disk story {n}"), &long),
        );
    }
    wait_for_failure(&daemon);
    // Every feed still whole, and the daemon still serving.
    check_outputs(&public);
    assert_eq!(daemon.get("/en/atom.xml", &[]).status, 200);
    std::fs::remove_file(&filler).expect("free the space");
    daemon.wait_for_feed("/en/atom.xml", "the English feed", |feed| {
        feed.entries.len() == 4
    });
    check_outputs(&public);
    let leftovers: Vec<String> = std::fs::read_dir(public.join("en"))
        .expect("the folder")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp") && !name.contains(".old."))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_eq!(daemon.stop(), Some(0));
}

/// Opens a connection to `address` and sends `bytes`; `None` if the server refused.
fn connect_and_send(address: &str, bytes: &[u8]) -> Option<std::net::TcpStream> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.write_all(bytes).ok()?;
    Some(stream)
}

#[test]
fn slow_clients_and_a_crowd_of_idle_connections_do_not_stop_serving() {
    use std::io::Read;
    let mut daemon = Daemon::start("");
    let address = daemon.address.clone();
    // Slow clients: a request begun and never finished.
    let slow: Vec<_> = (0..300)
        .filter_map(|_| connect_and_send(&address, b"GET /en/atom.xml HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    assert_eq!(
        daemon.get("/en/atom.xml", &[]).status,
        200,
        "blocked by slow clients"
    );
    // A crowd past the connection limit, each having had one answer and now idle on a
    // kept-alive connection.
    let crowd: Vec<_> = (0..1100)
        .filter_map(|_| {
            let mut stream =
                connect_and_send(&address, b"GET /zh/atom.xml HTTP/1.1\r\nHost: x\r\n\r\n")?;
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .ok()?;
            let mut buffer = [0u8; 256];
            let _ = stream.read(&mut buffer);
            Some(stream)
        })
        .collect();
    // A newcomer is answered while all of them hold on (idle connections are let go).
    let answered = wait_for(Duration::from_secs(60), "an answer past the crowd", || {
        let mut stream = connect_and_send(
            &address,
            b"GET /en/feed.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 200").then_some(text)
    });
    assert!(answered.contains("\"version\""));
    // The slow clients are cut off by the header timeout rather than held forever.
    let mut first = slow.into_iter().next().expect("a slow client");
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let mut rest = Vec::new();
    let cut = first.read_to_end(&mut rest);
    assert!(cut.is_ok(), "a slow client was never cut off: {cut:?}");
    drop(crowd);
    assert_eq!(daemon.get("/", &[]).status, 200);
    assert_eq!(daemon.stop(), Some(0));
}
