//! The digest end to end: the real binary composing from a real state database and
//! delivering to a real SMTP server running in this process (mailin-embedded, with
//! STARTTLS and AUTH where a test needs them); every email parsed back as MIME
//! (mail-parser). Failures are made by the server: down, 4xx, 5xx, stalling.

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::MessageParser;
use mailin_embedded::{response, AuthMechanism, Handler, Response, Server, SslConfig};

use crate::daemon::{article, drop_by_rename, seed, wait_for, Daemon};

/// One email as the server accepted it.
#[derive(Clone, Debug)]
struct Received {
    to: Vec<String>,
    raw: Vec<u8>,
}

#[derive(Default)]
struct SinkState {
    received: Vec<Received>,
    current: Vec<u8>,
    current_to: Vec<String>,
    /// Answers to RCPT, used up one per recipient before accepting (greylisting).
    rcpt_answers: VecDeque<Response>,
    /// Recipients refused for good at RCPT.
    refused: Vec<String>,
    /// Every RCPT the server saw.
    rcpts: Vec<String>,
    /// Every login tried: user, password.
    logins: Vec<(String, String)>,
    credentials: Option<(String, String)>,
}

/// A mail server's storage: cloned into each SMTP session.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<SinkState>>);

impl Sink {
    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    fn login(&mut self, user: &str, password: &str) -> Response {
        let mut state = self.state();
        state.logins.push((user.to_string(), password.to_string()));
        match &state.credentials {
            Some((u, p)) if u == user && p == password => response::AUTH_OK,
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        let mut state = self.state();
        state.rcpts.push(to.to_string());
        if state
            .refused
            .iter()
            .any(|refused| to.contains(refused.as_str()))
        {
            response::NO_MAILBOX
        } else if let Some(answer) = state.rcpt_answers.pop_front() {
            answer
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        let mut state = self.state();
        state.current.clear();
        state.current_to = to.to_vec();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.state().current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.state();
        let received = Received {
            to: std::mem::take(&mut state.current_to),
            raw: std::mem::take(&mut state.current),
        };
        state.received.push(received);
        response::OK
    }

    fn auth_plain(&mut self, _authorization: &str, user: &str, password: &str) -> Response {
        self.login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.login(user, password)
    }
}

/// Runs an SMTP server on `listener` for the rest of the test process.
fn serve_smtp(listener: TcpListener, sink: Sink, tls: Option<&Tls>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut server = Server::new(sink);
    server.with_name("localhost").with_tcp_listener(listener);
    if let Some(tls) = tls {
        server
            .with_ssl(SslConfig::SelfSigned {
                cert_path: tls.cert.display().to_string(),
                key_path: tls.key.display().to_string(),
            })
            .expect("the test certificate loads");
        server
            .with_auth(AuthMechanism::Plain)
            .with_auth(AuthMechanism::Login);
    }
    std::thread::spawn(move || {
        let _ = server.serve().map_err(|error| error.to_string());
    });
}

/// A free port on the loopback interface, and its listener.
fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("an address").port();
    (listener, port)
}

/// A self-signed certificate for `localhost`, as PEM files.
struct Tls {
    cert: PathBuf,
    key: PathBuf,
}

fn test_certificate(folder: &Path) -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a test certificate");
    let cert = folder.join("smtp-cert.pem");
    let key = folder.join("smtp-key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    Tls { cert, key }
}

/// A site folder with two seed articles built, and a config whose digest goes to
/// `recipients` through the server at `port` (plain SMTP on loopback unless `smtp`
/// says otherwise).
fn site(port: u16, recipients: &[(&str, &str)], smtp: &str) -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let inbox = folder.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("create the inbox");
    std::fs::write(inbox.join("000_seed.txt"), seed("000")).expect("write a seed");
    std::fs::write(inbox.join("004_seed.txt"), seed("004")).expect("write a seed");
    std::fs::write(
        folder.path().join("twinfeed.toml"),
        config(port, recipients, smtp),
    )
    .expect("write the config");
    let built = twinfeed(folder.path(), &["build"], &[]);
    assert!(built.status.success(), "{}", stderr(&built));
    folder
}

fn config(port: u16, recipients: &[(&str, &str)], smtp: &str) -> String {
    let mut text = String::from(
        "[digest]\nenabled = true\nfrom = \"新闻摘要 <digest@example.org>\"\nretry_secs = 1\n",
    );
    for (email, lang) in recipients {
        text.push_str(&format!(
            "[[digest.recipients]]\nemail = \"{email}\"\nlang = \"{lang}\"\n"
        ));
    }
    let smtp = if smtp.is_empty() {
        "host = \"127.0.0.1\"\nsecurity = \"none\"\n"
    } else {
        smtp
    };
    text.push_str(&format!(
        "[digest.smtp]\nport = {port}\ntimeout_secs = 5\n{smtp}"
    ));
    text
}

/// Runs a twinfeed command on the site's config.
fn twinfeed(folder: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(args)
        .arg("--config")
        .arg(folder.join("twinfeed.toml"))
        .envs(env.iter().copied())
        .env("TWINFEED_LOG", "info")
        .output()
        .expect("the twinfeed binary runs")
}

fn send(folder: &Path) -> Output {
    twinfeed(folder, &["digest", "send"], &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn status(folder: &Path) -> String {
    let output = twinfeed(folder, &["status"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// The mail received for one address.
fn mail_to(received: &[Received], email: &str) -> Vec<Received> {
    received
        .iter()
        .filter(|mail| mail.to.iter().any(|to| to.contains(email)))
        .cloned()
        .collect()
}

/// How many article pages a language's folder has.
fn pages(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .expect("a language folder")
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.ends_with(".html") && name != "index.html"
        })
        .count()
}

/// Waits until a retry is due (`retry_secs = 1`).
fn wait_for_retry() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn each_recipient_gets_one_multipart_email_in_their_language() {
    let (listener, port) = listener();
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    let recipients = [
        ("zh@example.org", "zh"),
        ("en@example.org", "en"),
        ("both@example.org", "both"),
    ];
    let folder = site(port, &recipients, "");
    let sent = send(folder.path());
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stdout(&sent).starts_with("3 sent, 0 failed"),
        "{}",
        stdout(&sent)
    );
    let received = sink.received();
    assert_eq!(received.len(), 3);
    let public = folder.path().join("public");
    let mut message_ids = Vec::new();
    for (email, lang) in recipients {
        let mails = mail_to(&received, email);
        assert_eq!(mails.len(), 1, "{email}");
        let raw = &mails[0].raw;
        // Headers are 7-bit: the Chinese subject and sender name are encoded words.
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header section");
        assert!(raw[..head_end].is_ascii(), "{email}: raw 8-bit header");
        let message = MessageParser::default()
            .parse(raw)
            .expect("the email parses");
        let subject = message.subject().expect("a subject");
        let from = message
            .from()
            .and_then(|from| from.first())
            .expect("a sender");
        assert_eq!(from.name(), Some("新闻摘要"));
        assert!(message.date().is_some(), "{email}: Date");
        let id = message.message_id().expect("a Message-ID").to_string();
        assert!(id.ends_with("@example.org"), "{id}");
        message_ids.push(id);
        let header = |name: &str| {
            message
                .header_raw(name)
                .unwrap_or_else(|| panic!("{email}: no {name}"))
                .trim()
                .to_string()
        };
        assert_eq!(
            header("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        assert!(header("List-Id").contains("<digest.example.org>"));
        let unsubscribe = header("List-Unsubscribe");
        let token = unsubscribe
            .strip_prefix("<http://127.0.0.1:8080/unsubscribe/")
            .and_then(|rest| rest.strip_suffix('>'))
            .unwrap_or_else(|| panic!("{email}: List-Unsubscribe {unsubscribe}"));
        assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()));
        let text = message.body_text(0).expect("a plain-text part");
        let html = message.body_html(0).expect("an HTML part");
        assert_eq!(message.text_body.len(), 1);
        assert_eq!(message.html_body.len(), 1);
        assert!(
            text.contains(&unsubscribe[1..unsubscribe.len() - 1]),
            "{email}: footer link"
        );
        // Every article link points at a page that was published.
        let links: Vec<&str> = html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|link| link.ends_with(".html"))
            .collect();
        let expected_langs: &[&str] = match lang {
            "zh" => &["zh"],
            "en" => &["en"],
            _ => &["zh", "en"],
        };
        for link in &links {
            let path = link
                .strip_prefix("http://127.0.0.1:8080/")
                .expect("an absolute link under base_url");
            assert!(public.join(path).is_file(), "{email}: {link} is not a page");
            assert!(text.contains(link), "{email}: {link} not in the text part");
            let lang_of_link = path.split('/').next().unwrap_or_default();
            assert!(expected_langs.contains(&lang_of_link), "{email}: {link}");
        }
        let n_pages: usize = expected_langs
            .iter()
            .map(|lang| pages(&public.join(lang)))
            .sum();
        assert!(n_pages > 0);
        assert_eq!(links.len(), n_pages, "{email}: {links:?}");
        match lang {
            "zh" => assert!(subject.contains("篇新文章"), "{subject}"),
            "en" => assert!(
                subject.contains(&format!("{} new article", pages(&public.join("en")))),
                "{subject}"
            ),
            _ => assert!(subject.contains("篇新文章") && subject.contains("new article")),
        }
    }
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 3, "Message-IDs are unique");

    // Nothing new: no email.
    let again = send(folder.path());
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing new since the last digest"),
        "{}",
        stderr(&again)
    );
    assert_eq!(sink.received().len(), 3);

    // One new article: each recipient gets it, and only it.
    let inbox = folder.path().join("inbox");
    std::fs::write(
        inbox.join("new.txt"),
        article("Harbour opens", "Ships came in."),
    )
    .expect("write");
    let built = twinfeed(folder.path(), &["build"], &[]);
    assert!(built.status.success(), "{}", stderr(&built));
    let third = send(folder.path());
    assert!(third.status.success(), "{}", stderr(&third));
    let received = sink.received();
    assert_eq!(received.len(), 6);
    let en = &mail_to(&received, "en@example.org")[1];
    let message = MessageParser::default().parse(&en.raw).expect("parses");
    let text = message.body_text(0).expect("text");
    assert!(text.contains("Harbour opens"), "{text}");
    assert_eq!(text.matches(".html").count(), 1, "{text}");
    assert!(message
        .subject()
        .is_some_and(|s| s.contains(": 1 new article (")));
    let report = status(folder.path());
    assert!(
        report.contains("outbox        0 pending, 6 sent, 0 failed"),
        "{report}"
    );
}

#[test]
fn starttls_with_a_test_certificate_and_auth() {
    let folder = tempfile::tempdir().expect("a folder");
    let tls = test_certificate(folder.path());
    let (listener, port) = listener();
    let sink = Sink::default();
    sink.state().credentials = Some(("twinfeed".into(), "s3cret pass".into()));
    serve_smtp(listener, sink.clone(), Some(&tls));
    let smtp = format!(
        "host = \"localhost\"\nsecurity = \"starttls\"\nusername = \"twinfeed\"\n\
         password_env = \"TEST_SMTP_PASSWORD\"\nca_file = \"{}\"\n",
        tls.cert.display()
    );
    let site = site(port, &[("reader@example.org", "en")], &smtp);

    // A wrong password: nobody's delivery is given up, it waits for a retry.
    let refused = twinfeed(
        site.path(),
        &["digest", "send"],
        &[("TEST_SMTP_PASSWORD", "wrong")],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        !stderr(&refused).contains("wrong"),
        "the password is logged"
    );
    assert!(status(site.path()).contains("1 pending"));
    assert!(sink.received().is_empty());

    wait_for_retry();
    let sent = twinfeed(
        site.path(),
        &["digest", "send"],
        &[("TEST_SMTP_PASSWORD", "s3cret pass")],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(!stderr(&sent).contains("s3cret"), "the password is logged");
    assert_eq!(sink.received().len(), 1);
    let logins = sink.state().logins.clone();
    assert_eq!(
        logins.last(),
        Some(&("twinfeed".to_string(), "s3cret pass".to_string()))
    );

    // Without the test CA the certificate is not trusted: nothing is sent in the clear.
    let untrusted = site_with(&site, &smtp.replace(&tls.cert.display().to_string(), ""));
    std::fs::write(
        untrusted.join("inbox/more.txt"),
        article("Another", "Text."),
    )
    .expect("write");
    assert!(twinfeed(&untrusted, &["build"], &[]).status.success());
    let logins_before = sink.state().logins.len();
    let failed = twinfeed(
        &untrusted,
        &["digest", "send"],
        &[("TEST_SMTP_PASSWORD", "s3cret pass")],
    );
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(sink.state().logins.len(), logins_before, "credentials sent");
    assert_eq!(sink.received().len(), 1);
}

/// Starts `twinfeed digest send` on the site in `folder`, quietly, to be killed.
fn spawn_send(folder: &tempfile::TempDir) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .args(["digest", "send", "--config"])
        .arg(folder.path().join("twinfeed.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinfeed starts")
}

/// Rewrites the site's config with another `[digest.smtp]` body; returns its folder.
fn site_with(site: &tempfile::TempDir, smtp: &str) -> PathBuf {
    let path = site.path().join("twinfeed.toml");
    let text = std::fs::read_to_string(&path).expect("read the config");
    let head = text.split("[digest.smtp]").next().expect("a head");
    let port = text
        .lines()
        .find_map(|line| line.strip_prefix("port = "))
        .expect("a port");
    std::fs::write(
        &path,
        format!("{head}[digest.smtp]\nport = {port}\ntimeout_secs = 5\n{smtp}"),
    )
    .expect("write the config");
    site.path().to_path_buf()
}

#[test]
fn server_down_then_back_delivers_once() {
    let (listener, port) = listener();
    drop(listener);
    let folder = site(port, &[("reader@example.org", "both")], "");
    let down = send(folder.path());
    assert_eq!(down.status.code(), Some(1), "{}", stderr(&down));
    assert!(
        stdout(&down).contains("0 sent, 0 failed, 1 to retry"),
        "{}",
        stdout(&down)
    );
    let report = status(folder.path());
    assert!(report.contains("1 pending"), "{report}");
    assert!(
        report.contains("reader@example.org (1 attempts)"),
        "{report}"
    );

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    wait_for_retry();
    let back = send(folder.path());
    assert!(back.status.success(), "{}", stderr(&back));
    wait_for_retry();
    let again = send(folder.path());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(sink.received().len(), 1);
    assert!(status(folder.path()).contains("0 pending, 1 sent, 0 failed"));
}

#[test]
fn a_4xx_is_retried_and_delivered_once() {
    let (listener, port) = listener();
    let sink = Sink::default();
    sink.state()
        .rcpt_answers
        .push_back(response::INTERNAL_ERROR);
    serve_smtp(listener, sink.clone(), None);
    let folder = site(port, &[("reader@example.org", "en")], "");
    let first = send(folder.path());
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let report = status(folder.path());
    assert!(
        report.contains("451"),
        "the server's answer is kept: {report}"
    );
    assert!(sink.received().is_empty());
    wait_for_retry();
    let second = send(folder.path());
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(sink.received().len(), 1);
    wait_for_retry();
    assert!(send(folder.path()).status.success());
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn a_5xx_is_recorded_and_not_retried() {
    let (listener, port) = listener();
    let sink = Sink::default();
    sink.state().refused.push("gone@example.org".into());
    serve_smtp(listener, sink.clone(), None);
    let folder = site(
        port,
        &[("gone@example.org", "en"), ("reader@example.org", "en")],
        "",
    );
    let sent = send(folder.path());
    assert_eq!(sent.status.code(), Some(1), "{}", stderr(&sent));
    assert!(
        stdout(&sent).starts_with("1 sent, 1 failed, 0 to retry"),
        "{}",
        stdout(&sent)
    );
    assert_eq!(mail_to(&sink.received(), "reader@example.org").len(), 1);
    let report = status(folder.path());
    assert!(report.contains("failed\n"), "{report}");
    let line = report
        .lines()
        .find(|line| line.contains("gone@example.org"))
        .expect("the failure is listed");
    assert!(line.contains("550"), "{line}");
    wait_for_retry();
    assert!(send(folder.path()).status.success());
    let tries = sink
        .state()
        .rcpts
        .iter()
        .filter(|to| to.contains("gone@example.org"))
        .count();
    assert_eq!(tries, 1, "a permanent failure was retried");
}

#[test]
fn killed_between_compose_and_delivery_delivers_after_restart_once() {
    // A server that accepts connections and never says a word: delivery hangs.
    let (stall, port) = listener();
    let folder = site(
        port,
        &[("a@example.org", "zh"), ("b@example.org", "en")],
        "",
    );
    let mut child = spawn_send(&folder);
    let (connection, _) = stall.accept().expect("twinfeed connects");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    drop(connection);
    drop(stall);
    assert!(status(folder.path()).contains("2 pending, 0 sent"));

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    let daemon_config =
        std::fs::read_to_string(folder.path().join("twinfeed.toml")).expect("the config");
    let mut daemon = Daemon::start_in(folder, &daemon_config);
    wait_for(Duration::from_secs(20), "the pending digests", || {
        (sink.received().len() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.stop(), Some(0));
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(mail_to(&received, "a@example.org").len(), 1);
    assert_eq!(mail_to(&received, "b@example.org").len(), 1);
    assert!(status(daemon.folder.path()).contains("0 pending, 2 sent"));
}

#[test]
fn a_missed_scheduled_digest_is_sent_when_the_daemon_starts() {
    let (listener, port) = listener();
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    let folder = site(port, &[("reader@example.org", "zh")], "");
    // The daemon last handled a scheduled time long ago, then was down.
    let connection = rusqlite::Connection::open(folder.path().join("state/twinfeed.db"))
        .expect("the state database");
    connection
        .execute(
            "INSERT INTO settings (key, value) VALUES ('digest.last_tick', '2000-01-01T00:00:00Z')",
            [],
        )
        .expect("set the last tick");
    drop(connection);
    let config = std::fs::read_to_string(folder.path().join("twinfeed.toml")).expect("config");
    let mut daemon = Daemon::start_in(folder, &config);
    wait_for(Duration::from_secs(20), "the missed digest", || {
        (sink.received().len() == 1).then_some(())
    });
    assert_eq!(daemon.stop(), Some(0));
    let received = sink.received();
    let message = MessageParser::default()
        .parse(&received[0].raw)
        .expect("parses");
    assert!(message.subject().is_some_and(|s| s.contains("篇新文章")));
    // Restarting does not send it again.
    daemon.restart();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn one_click_unsubscribe_with_a_good_and_a_forged_token() {
    let (listener, port) = listener();
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    let folder = site(
        port,
        &[("leaving@example.org", "en"), ("staying@example.org", "en")],
        "",
    );
    assert!(send(folder.path()).status.success());
    let leaving = &mail_to(&sink.received(), "leaving@example.org")[0];
    let message = MessageParser::default()
        .parse(&leaving.raw)
        .expect("parses");
    let url = message
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .trim_matches(['<', '>'])
        .to_string();
    let path = url
        .strip_prefix("http://127.0.0.1:8080")
        .expect("under base_url");
    let config = std::fs::read_to_string(folder.path().join("twinfeed.toml")).expect("config");
    let daemon = Daemon::start_in(folder, &config);

    // Opening the link shows a button and records nothing.
    let page = daemon.get(path, &[]);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<form method=\"post\""));
    // A forged and an altered token do nothing.
    let forged = daemon.post(
        "/unsubscribe/0123456789abcdef0123456789abcdef",
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(forged.status, 404);
    let mut altered = path.to_string();
    let last = altered.pop().expect("a token");
    altered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        daemon.post(&altered, "List-Unsubscribe=One-Click").status,
        404
    );
    assert!(status(daemon.folder.path()).contains("; 0 opted out"));

    let good = daemon.post(path, "List-Unsubscribe=One-Click");
    assert_eq!(good.status, 200);
    assert!(status(daemon.folder.path()).contains("; 1 opted out"));
    // Twice is still one opt-out.
    assert_eq!(daemon.post(path, "List-Unsubscribe=One-Click").status, 200);
    assert!(status(daemon.folder.path()).contains("; 1 opted out"));

    drop_by_rename(
        &daemon.inbox(),
        "later.txt",
        &article("Later news", "More text."),
    );
    daemon.wait_for_feed("/en/atom.xml", "the new article", |feed| {
        feed.entries.iter().any(|entry| {
            entry
                .title
                .as_ref()
                .is_some_and(|t| t.content == "Later news")
        })
    });
    let sent = send(daemon.folder.path());
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(mail_to(&sink.received(), "leaving@example.org").len(), 1);
    assert_eq!(mail_to(&sink.received(), "staying@example.org").len(), 2);
}

#[test]
fn preview_changes_nothing() {
    let (_listener, port) = listener();
    let folder = site(port, &[("reader@example.org", "both")], "");
    let database = folder.path().join("state/twinfeed.db");
    let before = status(folder.path());
    let text = twinfeed(folder.path(), &["digest", "preview"], &[]);
    assert!(text.status.success(), "{}", stderr(&text));
    let printed = stdout(&text);
    assert!(printed.starts_with("Subject: "), "{printed}");
    assert!(
        printed.contains("篇新文章") && printed.contains("new article"),
        "{printed}"
    );
    let eml = twinfeed(
        folder.path(),
        &["digest", "preview", "--lang", "zh", "--format", "eml"],
        &[],
    );
    let message = MessageParser::default()
        .parse(&eml.stdout)
        .expect("the preview parses");
    assert!(message
        .body_html(0)
        .is_some_and(|html| html.contains("lang=\"zh")));
    assert!(!message.body_text(0).expect("text").contains("/en/"));
    assert_eq!(status(folder.path()), before);
    let connection = rusqlite::Connection::open(&database).expect("the database");
    let digests: i64 = connection
        .query_row("SELECT count(*) FROM digests", [], |row| row.get(0))
        .expect("count");
    assert_eq!(digests, 0);
}

#[test]
fn stalled_server_times_out_and_the_delivery_waits() {
    let (stall, port) = listener();
    let folder = site(port, &[("reader@example.org", "en")], "");
    std::fs::write(
        folder.path().join("twinfeed.toml"),
        config(
            port,
            &[("reader@example.org", "en")],
            "host = \"127.0.0.1\"\nsecurity = \"none\"\n",
        )
        .replace("timeout_secs = 5", "timeout_secs = 1"),
    )
    .expect("rewrite the config");
    let held = std::thread::spawn(move || {
        let connections: Vec<TcpStream> = (0..2)
            .filter_map(|_| stall.accept().ok().map(|c| c.0))
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(connections);
    });
    let sent = send(folder.path());
    assert_eq!(sent.status.code(), Some(1), "{}", stderr(&sent));
    assert!(stdout(&sent).contains("1 to retry"), "{}", stdout(&sent));
    drop(held);
}

#[test]
fn a_delivery_failing_past_the_give_up_time_is_given_up() {
    let (listener, port) = listener();
    drop(listener);
    let folder = site(port, &[("reader@example.org", "en")], "");
    assert_eq!(send(folder.path()).status.code(), Some(1));
    // The digest was composed longer ago than `give_up_hours` (48).
    let connection = rusqlite::Connection::open(folder.path().join("state/twinfeed.db"))
        .expect("the state database");
    connection
        .execute("UPDATE digests SET created = created - 49 * 3600", [])
        .expect("age the digest");
    connection
        .execute("UPDATE deliveries SET next_attempt = 0", [])
        .expect("make it due");
    drop(connection);
    let late = send(folder.path());
    assert_eq!(late.status.code(), Some(1), "{}", stderr(&late));
    assert!(
        stdout(&late).contains("0 sent, 1 failed, 0 to retry"),
        "{}",
        stdout(&late)
    );
    let report = status(folder.path());
    let line = report
        .lines()
        .find(|line| line.contains("reader@example.org"))
        .expect("the failure is listed");
    assert!(line.contains("gave up after 2 attempts"), "{line}");
    assert!(report.contains("0 pending"), "{report}");
}

#[test]
fn killed_at_random_moments_during_a_delivery_loses_no_email() {
    // Many recipients, `digest send` killed with SIGKILL at random moments while it
    // delivers, then run again, until everything is sent. No one may miss the digest;
    // a second copy is possible only for the message in flight at each kill (the window
    // between the server's 250 and the sent mark), with the same Message-ID.
    const N_RECIPIENTS: usize = 1000;
    let mut random = crate::reliability::Random::new("delivery kills");
    let (listener, port) = listener();
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    let emails: Vec<String> = (0..N_RECIPIENTS)
        .map(|n| format!("reader{n:04}@example.org"))
        .collect();
    let recipients: Vec<(&str, &str)> = emails
        .iter()
        .enumerate()
        .map(|(n, email)| (email.as_str(), ["zh", "en", "both"][n % 3]))
        .collect();
    let folder = site(port, &recipients, "");
    let mut n_kills = 0;
    for _ in 0..crate::reliability::trials() {
        let mut child = spawn_send(&folder);
        std::thread::sleep(Duration::from_millis(random.below(300)));
        if child.try_wait().expect("wait").is_some() {
            break; // finished before the kill: everything was sent
        }
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        n_kills += 1;
    }
    let finished = send(folder.path());
    assert!(finished.status.success(), "{}", stderr(&finished));
    let received = sink.received();
    let mut n_extra = 0;
    for email in &emails {
        let copies = mail_to(&received, email);
        assert!(!copies.is_empty(), "{email} never got the digest");
        let ids: std::collections::BTreeSet<String> = copies
            .iter()
            .map(|mail| {
                let parsed = MessageParser::default().parse(&mail.raw).expect("MIME");
                parsed.message_id().expect("a Message-ID").to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{email} got different messages: {ids:?}");
        n_extra += copies.len() - 1;
    }
    assert!(
        n_extra <= n_kills,
        "{n_extra} second copies from {n_kills} kills: more than one per kill"
    );
    assert!(status(folder.path()).contains(&format!("0 pending, {N_RECIPIENTS} sent")));
    println!(
        "delivery kills: {n_kills} kills, {N_RECIPIENTS} recipients, none lost, {n_extra} second copies"
    );
}

/// A server that speaks SMTP as far as the message body, takes part of it and hangs up.
fn drop_mid_data(listener: TcpListener) -> std::thread::JoinHandle<usize> {
    use std::io::{BufRead, BufReader, Write};
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("twinfeed connects");
        let mut writer = stream.try_clone().expect("a second handle");
        let mut reader = BufReader::new(stream);
        writer.write_all(b"220 localhost ESMTP\r\n").expect("greet");
        let mut line = String::new();
        let mut n_body_bytes = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return n_body_bytes;
            }
            let command = line.to_ascii_uppercase();
            if command.starts_with("EHLO") {
                writer
                    .write_all(b"250-localhost\r\n250 8BITMIME\r\n")
                    .expect("ehlo");
            } else if command.starts_with("DATA") {
                writer.write_all(b"354 go ahead\r\n").expect("data");
                // Take a few lines of the message, then drop the connection.
                for _ in 0..5 {
                    line.clear();
                    n_body_bytes += reader.read_line(&mut line).unwrap_or(0);
                }
                return n_body_bytes;
            } else {
                writer.write_all(b"250 OK\r\n").expect("ok");
            }
        }
    })
}

#[test]
fn a_server_dropping_the_connection_mid_data_is_retried_and_delivered_once() {
    let (listener, port) = listener();
    let folder = site(port, &[("reader@example.org", "en")], "");
    let dropper = drop_mid_data(listener);
    let sent = send(folder.path());
    assert!(dropper.join().expect("the server") > 0, "no body was sent");
    assert_eq!(sent.status.code(), Some(1), "{}", stderr(&sent));
    assert!(stdout(&sent).contains("1 to retry"), "{}", stdout(&sent));
    // The same port now has a server that accepts.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    let sink = Sink::default();
    serve_smtp(listener, sink.clone(), None);
    wait_for_retry();
    let again = send(folder.path());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(mail_to(&sink.received(), "reader@example.org").len(), 1);
    assert!(status(folder.path()).contains("0 pending, 1 sent"));
}
