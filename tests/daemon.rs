//! `twinfeed run` end to end: the real binary on a temporary folder and a free port,
//! files dropped into its inbox the ways scrapers and people do it, and every result
//! read back over real HTTP (ureq) and parsed by a real feed parser (feed-rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fixtures;

/// A running daemon on a temporary site; killed when dropped.
pub struct Daemon {
    pub folder: tempfile::TempDir,
    child: Option<Child>,
    pub address: String,
    agent: ureq::Agent,
    env: Vec<(String, String)>,
}

/// One HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// How long a test waits for something the daemon should do within milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

impl Daemon {
    /// Starts `twinfeed run` on a new folder with this extra config (appended to a
    /// config that listens on a free port and settles in 200 ms).
    pub fn start(extra: &str) -> Daemon {
        let folder = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(folder.path().join("inbox")).expect("create the inbox");
        Daemon::start_in(folder, extra)
    }

    pub fn start_in(folder: tempfile::TempDir, extra: &str) -> Daemon {
        Daemon::start_with_env(folder, extra, &[])
    }

    pub fn start_with_env(folder: tempfile::TempDir, extra: &str, env: &[(&str, &str)]) -> Daemon {
        let config = format!("{extra}\n");
        let config = if config.contains("[serve]") {
            config
        } else {
            format!("{config}[serve]\nlisten = \"127.0.0.1:0\"\n")
        };
        let config = if config.contains("[watch]") {
            config
        } else {
            format!("{config}[watch]\nsettle_ms = 200\n")
        };
        std::fs::write(folder.path().join("twinfeed.toml"), config).expect("write the config");
        let mut daemon = Daemon {
            folder,
            child: None,
            address: String::new(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        };
        daemon.spawn();
        daemon
    }

    /// Starts the process and waits for it to say where it serves.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the log");
        let child = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
            .arg("run")
            .arg("--config")
            .arg(self.path("twinfeed.toml"))
            .env("TWINFEED_LOG", "debug")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the twinfeed binary starts");
        self.child = Some(child);
        let starts = self.log().matches(" at http://").count();
        self.address = wait_for(PATIENCE, "the daemon to serve", || {
            let log = self.log();
            let line = log
                .lines()
                .filter(|line| line.contains(" at http://"))
                .nth(starts)?;
            let address = line.rsplit("http://").next()?.trim_end_matches('/');
            Some(address.to_string())
        });
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.folder.path().join(relative)
    }

    pub fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    fn log_path(&self) -> PathBuf {
        self.path("twinfeed.log")
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.get(format!("http://{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.call().expect("the daemon answers"))
    }

    /// A form POST, as a mail client's one-click unsubscribe sends it (RFC 8058).
    pub fn post(&self, path: &str, body: &str) -> Answer {
        let request = self
            .agent
            .post(format!("http://{}{path}", self.address))
            .header("content-type", "application/x-www-form-urlencoded");
        answer(request.send(body).expect("the daemon answers"))
    }

    /// A feed fetched over HTTP and parsed.
    pub fn feed(&self, path: &str) -> feed_rs::model::Feed {
        let answer = self.get(path, &[]);
        assert_eq!(answer.status, 200, "{path}");
        feed_rs::parser::parse(&answer.body[..])
            .unwrap_or_else(|error| panic!("{path} does not parse: {error}"))
    }

    /// The entry ids of a feed fetched over HTTP.
    pub fn ids(&self, path: &str) -> Vec<String> {
        let feed = self.feed(path);
        feed.entries.into_iter().map(|entry| entry.id).collect()
    }

    /// Waits until the feed at `path` satisfies `check`, and returns it.
    pub fn wait_for_feed(
        &self,
        path: &str,
        what: &str,
        check: impl Fn(&feed_rs::model::Feed) -> bool,
    ) -> feed_rs::model::Feed {
        wait_for(PATIENCE, what, || {
            let feed = self.feed(path);
            check(&feed).then_some(feed)
        })
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(start.elapsed() < PATIENCE, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash or an OOM killer would.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    /// Starts the daemon again on the same folder.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status, headers and body of a response.
fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or_default().to_string();
            (name.as_str().to_string(), value)
        })
        .collect();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().expect("a body");
    Answer {
        status,
        headers,
        body,
    }
}

/// Polls `check` until it gives a value, or panics naming `what` after `patience`.
pub fn wait_for<T>(patience: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < patience, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn seed(number: &str) -> Vec<u8> {
    let folder = fixtures().join("seeds");
    for entry in std::fs::read_dir(&folder).expect("the seeds") {
        let path = entry.expect("a seed").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with(number) {
            return std::fs::read(path).expect("read a seed");
        }
    }
    panic!("no seed {number}");
}

/// A small bilingual article whose English title is `title`.
pub fn article(title: &str, body: &str) -> Vec<u8> {
    format!("会议在北京召开。{title}的中文报道。\n\n{title}\n\n{body}\n").into_bytes()
}

/// Writes a file beside the inbox, then renames it in: how scrapers should deliver.
pub fn drop_by_rename(inbox: &Path, name: &str, bytes: &[u8]) {
    let staging = inbox.parent().expect("a parent").join("staging");
    std::fs::create_dir_all(&staging).expect("create staging");
    std::fs::write(staging.join(name), bytes).expect("write");
    std::fs::rename(staging.join(name), inbox.join(name)).expect("rename in");
}

fn has_title(feed: &feed_rs::model::Feed, title: &str) -> bool {
    feed.entries
        .iter()
        .any(|entry| entry.title.as_ref().is_some_and(|t| t.content == title))
}

#[test]
fn a_renamed_in_file_is_published_and_served_with_validators() {
    let daemon = Daemon::start("");
    // The feeds exist from the first second, empty.
    assert!(daemon.feed("/en/atom.xml").entries.is_empty());
    drop_by_rename(&daemon.inbox(), "a.txt", &seed("002"));
    let feed = daemon.wait_for_feed("/en/atom.xml", "the article", |feed| {
        feed.entries.len() == 1
    });
    assert_eq!(feed.entries[0].id, "tag:twinfeed,2026:a/en");
    assert_eq!(daemon.ids("/zh/atom.xml"), ["tag:twinfeed,2026:a/zh"]);
    let answer = daemon.get("/en/atom.xml", &[]);
    assert_eq!(
        answer.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    let etag = answer.header("etag").expect("an ETag").to_string();
    let modified = answer
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    let again = daemon.get("/en/atom.xml", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let since = daemon.get("/en/atom.xml", &[("If-Modified-Since", &modified)]);
    assert_eq!(since.status, 304);
    let stale = daemon.get("/en/atom.xml", &[("If-None-Match", "\"0000\"")]);
    assert_eq!(stale.status, 200);
    for (path, media) in [
        ("/zh/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/zh/feed.json", "application/feed+json; charset=utf-8"),
        ("/en/a.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let answer = daemon.get(path, &[]);
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), Some(media), "{path}");
    }
}

#[test]
fn a_feed_whose_language_did_not_change_answers_304() {
    let daemon = Daemon::start("");
    drop_by_rename(
        &daemon.inbox(),
        "both.txt",
        &article("Both languages", "Body."),
    );
    daemon.wait_for_feed("/zh/atom.xml", "the bilingual file", |feed| {
        feed.entries.len() == 1
    });
    let zh = daemon.get("/zh/atom.xml", &[]);
    let zh_tag = zh.header("etag").expect("an ETag").to_string();
    let en_tag = daemon
        .get("/en/atom.xml", &[])
        .header("etag")
        .expect("an ETag")
        .to_string();
    let english = std::fs::read(fixtures().join("formatter/order_en_only.txt")).expect("fixture");
    drop_by_rename(&daemon.inbox(), "english.txt", &english);
    daemon.wait_for_feed("/en/atom.xml", "the English file", |feed| {
        feed.entries.len() == 2
    });
    // The Chinese feeds did not change: a reader polling them gets 304, not the feed.
    let zh_again = daemon.get("/zh/atom.xml", &[("If-None-Match", &zh_tag)]);
    assert_eq!(zh_again.status, 304);
    let en = daemon.get("/en/atom.xml", &[("If-None-Match", &en_tag)]);
    assert_eq!(en.status, 200);
}

#[test]
fn a_slowly_written_file_is_taken_once_complete() {
    // Writes every 100 ms; a settle time far above that keeps a loaded machine's late
    // wake-ups from looking like a finished file.
    let daemon = Daemon::start("[watch]\nsettle_ms = 2000\n");
    let path = daemon.inbox().join("slow.txt");
    let mut file = std::fs::File::create(&path).expect("create");
    let text = article("Slow news arrives", "The first part.");
    file.write_all(&text).expect("write");
    // Keep writing for 1.5 s, every 100 ms: never quiet for the settle time; only the
    // close says the file is complete.
    for part in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        writeln!(file, "\nPart {part} of the slow story.").expect("write");
        file.flush().expect("flush");
    }
    writeln!(file, "\nThe last part.").expect("write");
    drop(file);
    let feed = daemon.wait_for_feed("/en/atom.xml", "the slow file", |feed| {
        !feed.entries.is_empty()
    });
    let content = feed.entries[0]
        .content
        .as_ref()
        .and_then(|content| content.body.clone())
        .unwrap_or_default();
    assert!(content.contains("The last part."), "{content}");
    // Give any late event time to arrive; the file must have been taken once.
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log();
    assert_eq!(log.matches("slow.txt: published").count(), 1, "{log}");
}

#[test]
fn edits_keep_ids_deletes_retract_and_swap_files_are_ignored() {
    let daemon = Daemon::start("");
    drop_by_rename(
        &daemon.inbox(),
        "story.txt",
        &article("First title", "Body one."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the story", |feed| {
        has_title(feed, "First title")
    });
    let page = daemon.get("/en/story.html", &[]);
    assert_eq!(page.status, 200);
    // An editor saves: swap file first, then the file itself.
    std::fs::write(daemon.inbox().join(".story.txt.swp"), b"vim swap").expect("swap");
    std::fs::write(daemon.inbox().join("story.txt~"), b"backup").expect("backup");
    std::fs::write(
        daemon.inbox().join("story.txt"),
        article("Second title", "Body two."),
    )
    .expect("edit");
    let feed = daemon.wait_for_feed("/en/atom.xml", "the edit", |feed| {
        has_title(feed, "Second title")
    });
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].id, "tag:twinfeed,2026:story/en");
    std::fs::remove_file(daemon.inbox().join("story.txt")).expect("delete");
    daemon.wait_for_feed("/en/atom.xml", "the delete", |feed| feed.entries.is_empty());
    assert!(daemon.ids("/zh/atom.xml").is_empty());
    assert_eq!(daemon.get("/en/story.html", &[]).status, 404);
    let log = daemon.log();
    assert!(!log.contains(".story.txt.swp"), "{log}");
    assert!(!log.contains("story.txt~"), "{log}");
}

#[test]
fn a_burst_of_a_thousand_files_is_a_few_batches() {
    let daemon = Daemon::start("[feed]\nitems = 2000\n");
    let staging = daemon.path("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    for n in 0..1000 {
        let name = format!("burst-{n:04}.txt");
        let text = article(&format!("Burst story number {n}"), "A short body.");
        std::fs::write(staging.join(name), text).expect("write");
    }
    let moved = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mv {}/* {}/",
            staging.display(),
            daemon.inbox().display()
        ))
        .status()
        .expect("mv runs");
    assert!(moved.success());
    let feed = daemon.wait_for_feed("/en/atom.xml", "all 1,000 files", |feed| {
        feed.entries.len() == 1000
    });
    let mut ids: Vec<String> = feed.entries.into_iter().map(|entry| entry.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    let log = daemon.log();
    let batches = log.matches("twinfeed: updated ").count();
    assert!(batches <= 50, "{batches} batches for 1,000 files");
}

#[test]
fn files_added_while_down_are_published_once_at_start() {
    let mut daemon = Daemon::start("");
    drop_by_rename(
        &daemon.inbox(),
        "before.txt",
        &article("Before the crash", "Body."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the first file", |feed| {
        feed.entries.len() == 1
    });
    daemon.kill();
    for n in 0..3 {
        let text = article(&format!("While down {n}"), "Body.");
        std::fs::write(daemon.inbox().join(format!("down-{n}.txt")), text).expect("write");
    }
    std::fs::remove_file(daemon.inbox().join("before.txt")).expect("delete while down");
    daemon.restart();
    // The first build is done before the server answers.
    let ids = daemon.ids("/en/atom.xml");
    let mut expected: Vec<String> = (0..3)
        .map(|n| format!("tag:twinfeed,2026:down-{n}/en"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    let status = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["status", "--config"])
        .arg(daemon.path("twinfeed.toml"))
        .output()
        .expect("status runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("files         3 (0 rejected"), "{text}");
    assert!(text.contains("items         zh 3, en 3"), "{text}");
}

#[test]
fn a_broken_config_on_sighup_is_refused_and_serving_goes_on() {
    let mut daemon = Daemon::start("");
    drop_by_rename(&daemon.inbox(), "a.txt", &article("Kept title", "Body."));
    daemon.wait_for_feed("/en/atom.xml", "the file", |feed| feed.entries.len() == 1);
    let config = daemon.path("twinfeed.toml");
    let good = std::fs::read_to_string(&config).expect("the config");
    std::fs::write(&config, format!("{good}[site]\nbase_ulr = \"x\"\n")).expect("break it");
    daemon.signal("HUP");
    wait_for(PATIENCE, "the refusal", || {
        daemon.log().contains("reload refused").then_some(())
    });
    assert!(daemon.log().contains("`site.base_ulr`"));
    assert_eq!(daemon.feed("/en/atom.xml").entries.len(), 1);
    // A good new config is taken: a new title appears in the feeds.
    std::fs::write(&config, format!("{good}[site]\ntitle_en = \"Reloaded\"\n")).expect("fix it");
    daemon.signal("HUP");
    daemon.wait_for_feed("/en/atom.xml", "the new title", |feed| {
        feed.title
            .as_ref()
            .is_some_and(|title| title.content == "Reloaded")
    });
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn poll_mode_sees_files_on_file_systems_without_events() {
    let daemon = Daemon::start("[watch]\nmode = \"poll\"\npoll_ms = 100\nsettle_ms = 100\n");
    drop_by_rename(
        &daemon.inbox(),
        "polled.txt",
        &article("Polled news", "Body."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the polled file", |feed| {
        feed.entries.len() == 1
    });
    std::fs::remove_file(daemon.inbox().join("polled.txt")).expect("delete");
    daemon.wait_for_feed("/en/atom.xml", "the delete", |feed| feed.entries.is_empty());
}

/// Sends raw bytes and returns the raw answer: URL libraries clean `..` away, attackers
/// do not.
fn raw_request(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_server_never_leaves_the_output_folder() {
    let daemon = Daemon::start("");
    std::fs::write(daemon.path("secret.txt"), "SECRET beside the output").expect("write");
    let public = daemon.path("public");
    std::os::unix::fs::symlink(daemon.path("secret.txt"), public.join("leak.txt")).expect("link");
    std::os::unix::fs::symlink("/etc", public.join("etc")).expect("link");
    for path in [
        "/../secret.txt",
        "/zh/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/zh/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/leak.txt",
        "/etc/passwd",
        "/etc/",
        "/state/twinfeed.db",
        "/.hidden",
        "/%00secret.txt",
        "/zh/index.html%00.txt",
        "/%252e%252e/secret.txt",
        "//etc/passwd",
        "/./../secret.txt",
        "/zh/..;/..;/secret.txt",
        "/zh/%2e%2e/%2e%2e/secret.txt",
        "http://x/../secret.txt",
        "/\\..\\secret.txt",
    ] {
        let answer = raw_request(
            &daemon.address,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        let status = answer.lines().next().unwrap_or_default().to_string();
        assert!(
            status.contains(" 404 ") || status.contains(" 400 "),
            "{path}: {status}"
        );
        assert!(!answer.contains("SECRET"), "{path}");
        assert!(!answer.contains("root:"), "{path}");
    }
    // No directory listing: a folder redirects to its index, which is a page we made.
    let folder = daemon.get("/zh", &[]);
    assert_eq!(folder.status, 301);
    assert_eq!(folder.header("location"), Some("/zh/"));
    let index = daemon.get("/zh/", &[]);
    assert_eq!(index.status, 200);
    assert!(String::from_utf8_lossy(&index.body).contains("<html lang=\"zh\">"));
}

#[test]
fn head_gzip_methods_and_oversized_headers() {
    let daemon = Daemon::start("");
    drop_by_rename(&daemon.inbox(), "a.txt", &seed("002"));
    daemon.wait_for_feed("/zh/atom.xml", "the article", |feed| {
        feed.entries.len() == 1
    });
    let plain = daemon.get("/zh/atom.xml", &[]);
    let zipped = daemon.get("/zh/atom.xml", &[("Accept-Encoding", "gzip")]);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    assert_ne!(zipped.header("etag"), plain.header("etag"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain.body);
    assert!(zipped.body.len() < plain.body.len());
    let etag = zipped.header("etag").expect("an ETag");
    let revalidated = daemon.get(
        "/zh/atom.xml",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", etag)],
    );
    assert_eq!(revalidated.status, 304);
    let head = raw_request(
        &daemon.address,
        "HEAD /zh/atom.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let (head_lines, head_body) = head.split_once("\r\n\r\n").expect("a head");
    assert!(head_lines.starts_with("HTTP/1.1 200"), "{head_lines}");
    assert!(
        head_lines
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}", plain.body.len())),
        "{head_lines}"
    );
    assert!(head_body.is_empty());
    let post = raw_request(
        &daemon.address,
        "POST /zh/atom.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let refused = raw_request(&daemon.address, &huge);
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 431"),
        "{}",
        &refused[..refused.len().min(200)]
    );
    // The server is still up.
    assert_eq!(daemon.get("/zh/atom.xml", &[]).status, 200);
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let socket_path = folder.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let socket_name = socket_path.to_str().expect("UTF-8").to_string();
    let mut daemon = Daemon::start_with_env(
        folder,
        "",
        &[("NOTIFY_SOCKET", &socket_name), ("WATCHDOG_USEC", "200000")],
    );
    let mut heard = String::new();
    let listen = |until: &str, heard: &mut String| {
        wait_for(PATIENCE, until, || {
            let mut buffer = [0u8; 4096];
            if let Ok(n) = socket.recv(&mut buffer) {
                heard.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
            heard.contains(until).then_some(())
        });
    };
    listen("READY=1", &mut heard);
    listen("WATCHDOG=1", &mut heard);
    daemon.signal("HUP");
    listen("RELOADING=1", &mut heard);
    let reloading = heard.find("RELOADING=1").expect("heard");
    wait_for(PATIENCE, "READY after the reload", || {
        let mut buffer = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buffer) {
            heard.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        heard[reloading..].contains("READY=1").then_some(())
    });
    assert_eq!(daemon.stop(), Some(0));
    let mut buffer = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buffer) {
        heard.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    assert!(heard.contains("STOPPING=1"), "{heard}");
}

#[test]
fn the_systemd_unit_asks_for_notify_watchdog_reload_and_a_sandbox() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/twinfeed.service"),
    )
    .expect("the unit");
    let keys: Vec<&str> = unit.lines().filter(|line| !line.starts_with('#')).collect();
    for wanted in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/twinfeed",
    ] {
        assert!(keys.contains(&wanted), "{wanted} missing");
    }
    assert!(keys.iter().any(|line| line.starts_with("WatchdogSec=")));
    assert!(keys
        .iter()
        .any(|line| line.starts_with("ExecStart=") && line.contains(" run ")));
}

#[test]
fn an_inbox_that_goes_away_retracts_nothing_and_is_watched_again_when_back() {
    let daemon = Daemon::start("");
    drop_by_rename(
        &daemon.inbox(),
        "kept.txt",
        &article("Kept while away", "Body."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the file", |feed| feed.entries.len() == 1);
    // Moved away, as an unmounted disk would be: no file event, only the folder's.
    let away = daemon.path("inbox.away");
    std::fs::rename(daemon.inbox(), &away).expect("move the inbox away");
    wait_for(PATIENCE, "the missing inbox to be logged", || {
        daemon.log().contains("cannot list the inbox").then_some(())
    });
    assert_eq!(
        daemon.feed("/en/atom.xml").entries.len(),
        1,
        "nothing retracted"
    );
    // Back as a new folder: the old watch is gone, so a new one must be made.
    std::fs::create_dir(daemon.inbox()).expect("a new inbox");
    std::fs::rename(away.join("kept.txt"), daemon.inbox().join("kept.txt")).expect("move back");
    wait_for(PATIENCE, "publishing to work again", || {
        daemon
            .log()
            .contains("publishing works again")
            .then_some(())
    });
    drop_by_rename(
        &daemon.inbox(),
        "new.txt",
        &article("Arrived after", "Body."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the new file", |feed| {
        feed.entries.len() == 2
    });
}

#[test]
fn status_without_state_says_so() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(folder.path().join("twinfeed.toml"), "").expect("config");
    let status = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["status", "--config"])
        .arg(folder.path().join("twinfeed.toml"))
        .output()
        .expect("status runs");
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no state database"), "{stderr}");
    assert!(
        !folder.path().join("state").exists(),
        "status created state"
    );
}
