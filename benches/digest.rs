//! `twinfeed digest send` to many recipients through a local SMTP sink
//! (mailin-embedded in this process, bodies counted and dropped), beside the floor: the
//! same email bytes sent as many times over one connection by a minimal SMTP client,
//! with no composing and no database. The release binary runs under `/usr/bin/time`
//! for its peak memory; each round starts from the same state (a digest not yet sent).
//!
//! `cargo bench --bench digest` (TWINFEED_BENCH_RECIPIENTS, default 10000;
//! TWINFEED_BENCH_ROUNDS, default 3).

mod corpus;
mod settings;
mod timed;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{response, Handler, Response, Server, SslConfig};

/// Messages accepted, the one being received, the last one received.
type Counted = (usize, Vec<u8>, Vec<u8>);

/// Counts accepted messages and keeps the last one.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Counted>>);

impl Handler for Sink {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.0.lock().expect("the sink").1.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.lock().expect("the sink").1.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.0.lock().expect("the sink");
        state.0 += 1;
        state.2 = std::mem::take(&mut state.1);
        response::OK
    }
}

impl Sink {
    fn count(&self) -> usize {
        self.0.lock().expect("the sink").0
    }

    fn last(&self) -> Vec<u8> {
        self.0.lock().expect("the sink").2.clone()
    }
}

fn main() {
    let n_recipients = settings::number("TWINFEED_BENCH_RECIPIENTS", 10_000);
    let rounds = settings::number("TWINFEED_BENCH_ROUNDS", 3).max(1);
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let sink = Sink::default();
    let mut server = Server::new(sink.clone());
    server
        .with_name("localhost")
        .with_tcp_listener(listener)
        .with_num_threads(4);
    server.with_ssl(SslConfig::None).expect("no TLS");
    std::thread::spawn(move || {
        let _ = server.serve().map_err(|error| error.to_string());
    });

    let site = tempfile::tempdir().expect("a temporary folder");
    let inbox = site.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("the inbox");
    corpus::write(&inbox, 200).expect("the corpus");
    let mut config = String::from("[digest]\nenabled = true\n");
    for index in 0..n_recipients {
        let lang = ["zh", "en", "both"][index % 3];
        config.push_str(&format!(
            "[[digest.recipients]]\nemail = \"reader{index}@example.org\"\nlang = \"{lang}\"\n"
        ));
    }
    config.push_str(&format!(
        "[digest.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"
    ));
    let config_path = site.path().join("twinfeed.toml");
    std::fs::write(&config_path, config).expect("the config");
    let built = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["build", "--config"])
        .arg(&config_path)
        .output()
        .expect("twinfeed builds");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let state = site.path().join("state");
    let saved = site.path().join("state.saved");
    copy_folder(&state, &saved);

    println!(
        "digest benchmark: {n_recipients} recipients, {} cores, {rounds} rounds",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let (mut ours, mut floors, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let _ = std::fs::remove_dir_all(&state);
        copy_folder(&saved, &state);
        let before = sink.count();
        let (time, peak) = timed::twinfeed(&["digest", "send"], &config_path);
        assert_eq!(
            sink.count() - before,
            n_recipients,
            "every recipient got one"
        );
        ours.push(time);
        peaks.push(peak);
        let message = sink.last();
        floors.push(floor(port, &message, n_recipients));
    }
    let sample = sink.last();
    report("floor: raw SMTP client", &mut floors, n_recipients, None);
    report(
        "twinfeed digest send",
        &mut ours,
        n_recipients,
        peaks.iter().flatten().copied().reduce(f64::max),
    );
    floors.sort();
    ours.sort();
    println!(
        "  twinfeed / floor time: {:.2}x  (email size {} bytes)",
        ours[ours.len() / 2].as_secs_f64() / floors[floors.len() / 2].as_secs_f64(),
        sample.len()
    );
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("a folder") {
        let entry = entry.expect("an entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("a copy");
    }
}

/// The same message sent `n` times over one connection, waiting for each answer.
fn floor(port: u16, message: &[u8], n: usize) -> Duration {
    let start = Instant::now();
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the sink");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
    let mut writer = stream;
    let expect = |reader: &mut BufReader<TcpStream>, code: &str| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("an answer");
        assert!(line.starts_with(code), "{line}");
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect(&mut reader, "220");
    writer.write_all(b"EHLO bench\r\n").expect("write");
    expect(&mut reader, "250");
    let mut body = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            body.push(b'.');
        }
        body.extend_from_slice(line);
    }
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    for index in 0..n {
        writer
            .write_all(b"MAIL FROM:<digest@example.org>\r\n")
            .expect("write");
        expect(&mut reader, "250");
        writer
            .write_all(format!("RCPT TO:<floor{index}@example.org>\r\n").as_bytes())
            .expect("write");
        expect(&mut reader, "250");
        writer.write_all(b"DATA\r\n").expect("write");
        expect(&mut reader, "354");
        writer.write_all(&body).expect("write");
        expect(&mut reader, "250");
    }
    writer.write_all(b"QUIT\r\n").expect("write");
    start.elapsed()
}

fn report(label: &str, times: &mut [Duration], n: usize, peak: Option<f64>) {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "  {label:<24} {:>7.2} s median ({:.2}–{:.2})  {:>7.0} messages/s  peak {}",
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        n as f64 / median.as_secs_f64(),
        peak.map_or_else(|| "n/a".to_string(), |mib| format!("{mib:.1} MiB")),
    );
}
