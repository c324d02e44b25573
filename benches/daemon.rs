//! `twinfeed run` under load, the real release binary as a child process:
//!
//! - landing-to-published latency: a file renamed into the inbox of an archive of N
//!   articles, until both languages' `atom.xml` on disk carry it (p50, p99);
//! - a burst: many files moved in at once, until all are in the store, and how many
//!   batches it took;
//! - the same landing in Hugo's own watch mode (`hugo server --renderToDisk`) on the same
//!   archive, until both languages' RSS on disk carry it (p50, p99), when Hugo is
//!   installed;
//! - the server: conditional GETs (`If-None-Match`, answered 304) per second, twinfeed
//!   against nginx serving the same file, side by side in one run, by wrk.
//!
//! `cargo bench --bench daemon`. TWINFEED_BENCH_SIZES (default "1000,100000"),
//! TWINFEED_BENCH_LANDINGS (default 200), TWINFEED_BENCH_BURST (default 10000),
//! TWINFEED_BENCH_ROUNDS (default 3, server rounds per contender),
//! TWINFEED_BENCH_HUGO_LANDINGS (default 20: Hugo rebuilds far more per landing).

mod corpus;
mod peers;
mod settings;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A daemon running on a site folder; killed when dropped.
struct Daemon {
    child: Child,
    address: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(site: &Path) -> Daemon {
    let log = site.join("daemon.log");
    let _ = std::fs::remove_file(&log);
    let child = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .arg("run")
        .arg("--config")
        .arg(site.join("twinfeed.toml"))
        .env("TWINFEED_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("the log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("the twinfeed binary starts");
    let start = Instant::now();
    let address = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(" at http://")) {
            let address = line.rsplit("http://").next().unwrap_or_default();
            break address.trim_end_matches('/').to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the daemon did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Daemon { child, address }
}

fn landing_article(n: usize) -> String {
    format!(
        "会议在北京召开。第{n}次报道介绍了外事工作的新进展。\n\nLanding story number {n}\n\nThe body of landing story {n}, which arrived by rename.\n"
    )
}

/// A file's modification time and size: what tells that it may have changed.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .and_then(|m| Ok((m.modified()?, m.len())))
        .ok()
}

/// Waits until both feeds on disk name `id`; polls by mtime, reads on change.
fn wait_published(public: &Path, id: &str, since: Instant) -> Duration {
    wait_in_feeds(
        &[public.join("zh/atom.xml"), public.join("en/atom.xml")],
        id,
        since,
    )
}

/// Waits until every one of these files holds `id`; polls the mtime and size, reads on
/// a change, and at least every 50 ms: a writer that rewrites a file in place (Hugo) can
/// finish within the mtime's granularity after a read saw half of it.
fn wait_in_feeds(feeds: &[PathBuf; 2], id: &str, since: Instant) -> Duration {
    let mut seen = [None, None];
    let mut read_at = [since, since];
    let mut done = [false, false];
    loop {
        for (index, feed) in feeds.iter().enumerate() {
            if done[index] {
                continue;
            }
            let now = stamp(feed);
            if now != seen[index] || read_at[index].elapsed() > Duration::from_millis(50) {
                seen[index] = now;
                read_at[index] = Instant::now();
                done[index] = std::fs::read_to_string(feed).is_ok_and(|text| text.contains(id));
            }
        }
        if done.iter().all(|d| *d) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(600),
            "{id} never published"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A site with an archive of `n_files` built in, and its config.
fn archive_site(n_files: usize) -> tempfile::TempDir {
    let site = tempfile::tempdir().expect("a temporary folder");
    let inbox = site.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("the inbox");
    std::fs::create_dir_all(site.path().join("staging")).expect("staging");
    corpus::write(&inbox, n_files).expect("the corpus");
    std::fs::write(
        site.path().join("twinfeed.toml"),
        "[serve]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("the config");
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .arg("build")
        .arg("--config")
        .arg(site.path().join("twinfeed.toml"))
        .stderr(Stdio::null())
        .status()
        .expect("build runs");
    assert!(status.success());
    // Flush the archive's writes now, so they do not land in the timings below.
    let _ = Command::new("sync").status();
    println!(
        "archive of {n_files} articles built in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    site
}

fn latency(site: &Path, daemon: &Daemon, landings: usize) {
    let _ = daemon;
    let (staging, inbox, public) = (
        site.join("staging"),
        site.join("inbox"),
        site.join("public"),
    );
    let mut times = Vec::with_capacity(landings);
    for n in 0..landings {
        let name = format!("landing-{n:05}.txt");
        std::fs::write(staging.join(&name), landing_article(n)).expect("write");
        let id = format!("tag:twinfeed,2026:landing-{n:05}/");
        let start = Instant::now();
        std::fs::rename(staging.join(&name), inbox.join(&name)).expect("rename in");
        times.push(wait_published(&public, &id, start));
    }
    describe_latency(
        &format!(
            "twinfeed run: landing → both feeds on disk, {landings} files renamed in one by one"
        ),
        &mut times,
    );
    // The daemon's own account of each update, to tell its time from the rest.
    let log = std::fs::read_to_string(site.join("daemon.log")).unwrap_or_default();
    let mut updates: Vec<Duration> = log
        .lines()
        .filter_map(|line| line.split("updated in ").nth(1))
        .filter_map(|rest| rest.split(" ms").next())
        .filter_map(|value| value.parse::<f64>().ok())
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    updates.sort();
    if !updates.is_empty() {
        println!(
            "    of which Site::update (as logged): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(&updates, 0.5)),
            ms(percentile(&updates, 0.99)),
            ms(updates[updates.len() - 1]),
        );
    }
}

fn describe_latency(label: &str, times: &mut [Duration]) {
    times.sort();
    println!(
        "  {label}: p50 {:.1} ms, p99 {:.1} ms (min {:.1}, max {:.1})",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
}

/// The same landings in `hugo server`'s watch mode on the same archive: each article is
/// split into its Markdown pages beforehand (untimed), which are renamed into the
/// content folders; timed until both languages' RSS on disk carry it.
fn hugo_latency(site: &Path, landings: usize) {
    let Some((binary, version)) = peers::hugo() else {
        println!("  hugo server: Hugo is not installed (apt install hugo); skipped");
        return;
    };
    let hugo = site.join("hugo");
    let start = Instant::now();
    let n_pages = peers::hugo_site(&site.join("inbox"), &hugo).expect("the Hugo site");
    println!(
        "  hugo site of {n_pages} Markdown pages written in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let public = hugo.join("public");
    let log = site.join("hugo.log");
    let start = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "server",
            "--renderToDisk",
            "--disableLiveReload",
            "--bind",
            "127.0.0.1",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--source")
        .arg(&hugo)
        .arg("--destination")
        .arg(&public)
        .stdout(std::fs::File::create(&log).expect("the log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("hugo server starts");
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Web Server is available") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1200),
            "hugo server did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "  {version} server up in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let staging = site.join("hugo-staging");
    std::fs::create_dir_all(staging.join("content/zh")).expect("staging");
    std::fs::create_dir_all(staging.join("content/en")).expect("staging");
    let feeds = [public.join("zh/index.xml"), public.join("en/index.xml")];
    let mut times = Vec::with_capacity(landings);
    for n in 0..landings {
        let name = format!("hugo-landing-{n:05}");
        let text = staging.join(format!("{name}.txt"));
        std::fs::write(&text, landing_article(n)).expect("write");
        peers::hugo_pages(&text, &staging).expect("split");
        let start = Instant::now();
        for lang in ["zh", "en"] {
            let relative = format!("content/{lang}/{name}.md");
            std::fs::rename(staging.join(&relative), hugo.join(&relative)).expect("rename in");
        }
        times.push(wait_in_feeds(&feeds, &name, start));
    }
    describe_latency(
        &format!("hugo server: landing → both RSS feeds on disk, {landings} files one by one"),
        &mut times,
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn burst(site: &Path, n_burst: usize, n_before: usize) {
    let (staging, inbox) = (site.join("staging"), site.join("inbox"));
    for n in 0..n_burst {
        std::fs::write(
            staging.join(format!("burst-{n:06}.txt")),
            corpus::article(1_000_000 + n),
        )
        .expect("write");
    }
    let log = site.join("daemon.log");
    let batches_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("twinfeed: updated ")
        .count();
    let start = Instant::now();
    for n in 0..n_burst {
        let name = format!("burst-{n:06}.txt");
        std::fs::rename(staging.join(&name), inbox.join(&name)).expect("rename in");
    }
    let moved = start.elapsed();
    let state = site.join("state/twinfeed.db");
    let connection =
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the state");
    let expected = n_before + n_burst;
    loop {
        let n: i64 = connection
            .query_row("SELECT count(*) FROM files", [], |row| row.get(0))
            .unwrap_or(0);
        if usize::try_from(n).unwrap_or(0) >= expected {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the burst never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    // The batch that stored the last file may still be writing pages and feeds.
    std::thread::sleep(Duration::from_millis(500));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let batches = log_text.matches("twinfeed: updated ").count() - batches_before;
    let rebuilds = log_text.matches("twinfeed: rebuilt ").count();
    println!(
        "  burst of {n_burst} files renamed in ({:.2} s to move): all stored in {:.2} s ({:.0} files/s), {batches} batches, {rebuilds} full rebuilds",
        moved.as_secs_f64(),
        elapsed.as_secs_f64(),
        n_burst as f64 / elapsed.as_secs_f64(),
    );
}

/// ETag of `url` as the server sends it.
fn etag(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().expect("GET");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response
        .headers()
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .expect("an ETag")
        .to_string()
}

/// Requests per second wrk reaches for conditional GETs of `url`.
fn wrk(url: &str, etag: &str) -> f64 {
    let output = Command::new("wrk")
        .args(["-t2", "-c64", "-d5s", "-H"])
        .arg(format!("If-None-Match: {etag}"))
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx or 3xx"),
        "unexpected statuses from {url}: {text}"
    );
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate from wrk: {text}"))
}

fn start_nginx(root: &Path, prefix: &Path) -> Option<(Child, String)> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .ok()?;
    std::fs::create_dir_all(prefix.join("logs")).ok()?;
    let config = format!(
        "worker_processes auto;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; include /etc/nginx/mime.types; sendfile on; tcp_nopush on;\n\
           server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        prefix = prefix.display(),
        root = root.display(),
    );
    std::fs::write(prefix.join("nginx.conf"), config).ok()?;
    let child = Command::new(nginx)
        .args(["-p"])
        .arg(prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    Some((child, format!("127.0.0.1:{port}")))
}

fn server(site: &Path, daemon: &Daemon, rounds: usize) {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("  server: wrk is not installed (apt install wrk); skipped");
        return;
    }
    let path = "/en/atom.xml";
    let ours = format!("http://{}{path}", daemon.address);
    let our_tag = etag(&ours);
    let prefix = tempfile::tempdir().expect("a temporary folder");
    let nginx = start_nginx(&site.join("public"), prefix.path());
    let theirs = nginx
        .as_ref()
        .map(|(_, address)| format!("http://{address}{path}"));
    let their_tag = theirs.as_deref().map(etag);
    let (mut us, mut them) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        us.push(wrk(&ours, &our_tag));
        if let (Some(url), Some(tag)) = (&theirs, &their_tag) {
            them.push(wrk(url, tag));
        }
    }
    let describe = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        (
            median,
            format!(
                "{median:.0} req/s median ({:.0}–{:.0})",
                rates[0],
                rates[rates.len() - 1]
            ),
        )
    };
    let (our_median, our_text) = describe(&mut us);
    println!("  server, conditional GET of {path} (304), wrk -t2 -c64 -d5s, {rounds} rounds each:");
    println!("    twinfeed {our_text}");
    if them.is_empty() {
        println!("    nginx: not installed (apt install nginx-light); no comparison");
    } else {
        let (their_median, their_text) = describe(&mut them);
        println!("    nginx    {their_text}");
        println!("    twinfeed / nginx = {:.2}", our_median / their_median);
    }
    if let Some((mut child, _)) = nginx {
        // SIGTERM, not SIGKILL: the master stops its workers only when asked.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
}

fn main() {
    let sizes = settings::sizes("1000,100000");
    let landings = settings::number("TWINFEED_BENCH_LANDINGS", 200).max(1);
    let n_burst = settings::number("TWINFEED_BENCH_BURST", 10_000);
    let rounds = settings::number("TWINFEED_BENCH_ROUNDS", 3).max(1);
    let hugo_landings = settings::number("TWINFEED_BENCH_HUGO_LANDINGS", 20);
    println!(
        "daemon benchmark: {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    for (index, n_files) in sizes.iter().copied().enumerate() {
        let site = archive_site(n_files);
        let daemon = start_daemon(site.path());
        println!("archive of {n_files} articles:");
        latency(site.path(), &daemon, landings);
        if hugo_landings > 0 {
            hugo_latency(site.path(), hugo_landings);
        }
        if index == 0 {
            if n_burst > 0 {
                burst(site.path(), n_burst, n_files + landings);
            }
            server(site.path(), &daemon, rounds);
        }
    }
}
