//! The command line: clap definitions and one small function per subcommand. Output
//! formatting for people lives here; the work is done by the library modules.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::Config;
use crate::decode::DEFAULT_MAX_BYTES;
use crate::formatter::{Article, Item};
use crate::ingest::{self, IngestError, Ingested};

/// Separate Chinese and English feeds from a folder of bilingual news articles.
#[derive(Debug, Parser)]
#[command(name = "twinfeed", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what the formatter makes of one article file.
    ///
    /// Exits 1 when the file is rejected (the reason goes to stderr), 2 when it
    /// cannot be read.
    Inspect {
        /// The article file.
        file: PathBuf,
        /// Print JSON instead of the human-readable report.
        #[arg(long)]
        json: bool,
        /// Largest file accepted, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_BYTES)]
        max_bytes: u64,
    },
    /// Bring the feeds up to date with the inbox once, and exit.
    ///
    /// Rejected files are reported on stderr with their reasons; they do not fail the
    /// build. Exits 2 when the build cannot run (config, state database, output folder).
    Build {
        /// The config file; without it, the built-in defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the daemon: build, then watch the inbox, publish each change within
    /// milliseconds and serve the output folder, until SIGTERM or SIGINT.
    ///
    /// SIGHUP reloads the configuration and templates (a bad one is refused and the
    /// running one kept). Exits 2 when it cannot start.
    Run {
        /// The config file; without it, the built-in defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show what the state holds: files, items per language, rejected files with their
    /// reasons, and when outputs last changed.
    Status {
        /// The config file; without it, the built-in defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The digest newsletter: preview the next one, or compose and send one now.
    Digest {
        #[command(subcommand)]
        action: DigestCommand,
    },
    /// Validate the configuration and the templates; say what is wrong, or what the
    /// configuration resolves to.
    ///
    /// Exits 1 when the configuration is invalid.
    Check {
        /// The config file; without it, the built-in defaults are checked.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Show the next digest without sending it or changing any state: the items first
    /// seen since the last digest, rendered with the templates.
    ///
    /// Prints to stdout; "nothing new" goes to stderr. Exits 1 when there is no state
    /// database yet.
    Preview {
        /// One language's edition; without it, the edition with both sections.
        #[arg(long, value_enum)]
        lang: Option<PreviewLang>,
        /// `text`: subject and plain-text part; `html`: the HTML part; `eml`: the
        /// whole email as it would be sent (RFC 5322, MIME).
        #[arg(long, value_enum, default_value_t = PreviewFormat::Text)]
        format: PreviewFormat,
        /// The config file; without it, the built-in defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Compose a digest of what is new now and deliver it, with every other delivery
    /// that is due; waits while the daemon is delivering.
    ///
    /// Exits 1 when a delivery failed or is left to retry (`twinfeed status` lists
    /// them), 2 when it cannot run.
    Send {
        /// The config file; without it, the built-in defaults apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PreviewLang {
    Zh,
    En,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PreviewFormat {
    Text,
    Html,
    Eml,
}

/// Runs the parsed command line and says how the process should exit.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect {
            file,
            json,
            max_bytes,
        } => inspect(&file, json, max_bytes),
        Command::Check { config } => check(config.as_deref()),
        Command::Build { config } => build(config.as_deref()),
        Command::Run { config } => run_daemon(config.as_deref()),
        Command::Status { config } => status(config.as_deref()),
        Command::Digest {
            action:
                DigestCommand::Preview {
                    lang,
                    format,
                    config,
                },
        } => digest_preview(config.as_deref(), lang, format),
        Command::Digest {
            action: DigestCommand::Send { config },
        } => digest_send(config.as_deref()),
    }
}

/// The config and the state database, which must exist already.
fn existing_state(file: Option<&Path>) -> anyhow::Result<Option<(Config, crate::store::Store)>> {
    let config = Config::for_command(file)?;
    if !config.state.exists() {
        eprintln!(
            "twinfeed: no state database at {}: twinfeed has not built or run with this configuration yet",
            config.state.display()
        );
        return Ok(None);
    }
    let store = crate::store::Store::open(&config.state)?;
    Ok(Some((config, store)))
}

fn digest_preview(
    file: Option<&Path>,
    lang: Option<PreviewLang>,
    format: PreviewFormat,
) -> anyhow::Result<ExitCode> {
    use crate::config::Edition;
    use crate::digest::compose;
    let Some((config, store)) = existing_state(file)? else {
        return Ok(ExitCode::from(1));
    };
    let templates = crate::render::html::Templates::load(&config.templates)?;
    let now = chrono::Utc::now();
    let (items, _) = compose::new_items(&config, &store, now)?;
    let (zh, en) = compose::split(&items);
    let edition = match lang {
        Some(PreviewLang::Zh) => Edition::Zh,
        Some(PreviewLang::En) => Edition::En,
        None => Edition::Both,
    };
    let empty = match edition {
        Edition::Zh => zh.is_empty(),
        Edition::En => en.is_empty(),
        Edition::Both => items.is_empty(),
    };
    if empty {
        eprintln!("twinfeed: nothing new since the last digest: no email would be sent");
        return Ok(ExitCode::SUCCESS);
    }
    let part = compose::render(
        &config,
        &templates,
        edition,
        &zh,
        &en,
        &compose::date(&config, now),
    )?;
    let delivery = crate::store::Delivery {
        digest: crate::store::DigestRecord {
            id: 0,
            period: crate::digest::manual_period(now),
            created: now.timestamp(),
            key: "preview".into(),
        },
        email: config
            .digest
            .recipients
            .iter()
            .find(|recipient| recipient.lang == edition)
            .map_or_else(|| "reader@example.org".to_string(), |r| r.email.to_string()),
        edition,
        attempts: 0,
        token: "0".repeat(32),
    };
    let (text, html) = crate::digest::message::bodies(&config, &part, &delivery.token);
    let mut out = std::io::stdout().lock();
    match format {
        PreviewFormat::Text => {
            writeln!(out, "Subject: {}\n", part.subject)?;
            out.write_all(text.as_bytes())?;
        }
        PreviewFormat::Html => out.write_all(html.as_bytes())?,
        PreviewFormat::Eml => {
            let message = crate::digest::message::build(&config, &delivery, &part)?;
            out.write_all(&message.formatted())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn digest_send(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    use crate::digest::{deliver, worker};
    crate::logging::init(false);
    let Some((config, mut store)) = existing_state(file)? else {
        return Ok(ExitCode::from(1));
    };
    let templates = crate::render::html::Templates::load(&config.templates)?;
    let now = chrono::Utc::now();
    worker::compose_and_save(
        &config,
        &templates,
        &mut store,
        &crate::digest::manual_period(now),
        now,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let round = {
        let _lock = deliver::DeliveryLock::acquire(&config.state)?;
        runtime.block_on(deliver::deliver_due(&config, &mut store, &|| false))?
    };
    worker::log_round(&round);
    println!(
        "{} sent, {} failed, {} to retry, {} skipped",
        round.sent, round.failed, round.retrying, round.skipped
    );
    Ok(if round.failed > 0 || round.retrying > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn build(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    crate::logging::init(false);
    let config = Config::for_command(file)?;
    let now = chrono::Utc::now().timestamp();
    let built = crate::build::build(&config, now)?;
    crate::logging::report(&config, &built, "built", log::Level::Debug);
    Ok(ExitCode::SUCCESS)
}

fn run_daemon(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    crate::logging::init(true);
    crate::daemon::run(file)?;
    Ok(ExitCode::SUCCESS)
}

fn status(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::for_command(file)?;
    if !config.state.exists() {
        eprintln!(
            "twinfeed: no state database at {}: twinfeed has not built or run with this configuration yet",
            config.state.display()
        );
        return Ok(ExitCode::from(1));
    }
    let store = crate::store::Store::open(&config.state)?;
    let summary = store.summary()?;
    let last_publish = store
        .setting(crate::build::LAST_PUBLISH)?
        .and_then(|text| text.parse::<i64>().ok())
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map_or_else(
            || "never".to_string(),
            |time| time.with_timezone(&config.timezone).to_rfc3339(),
        );
    let mut out = std::io::stdout().lock();
    writeln!(out, "state         {}", config.state.display())?;
    writeln!(
        out,
        "files         {} ({} rejected, {} duplicates)",
        summary.n_files,
        summary.rejected.len(),
        summary.n_duplicates
    )?;
    writeln!(
        out,
        "items         zh {}, en {}",
        summary.n_items_zh, summary.n_items_en
    )?;
    writeln!(out, "last publish  {last_publish}")?;
    if !summary.rejected.is_empty() {
        writeln!(out, "rejected")?;
        for (name, reason) in &summary.rejected {
            writeln!(out, "  {name}: {reason}")?;
        }
    }
    let outbox = store.outbox()?;
    let last_digest = outbox.last.as_ref().map_or_else(
        || "never".to_string(),
        |(period, created)| {
            let when = chrono::DateTime::from_timestamp(*created, 0)
                .map(|time| time.with_timezone(&config.timezone).to_rfc3339())
                .unwrap_or_default();
            format!(
                "{period} (composed {when}; {} digests in all)",
                outbox.n_digests
            )
        },
    );
    writeln!(
        out,
        "digest        {}",
        if config.digest.enabled { "on" } else { "off" }
    )?;
    writeln!(out, "last digest   {last_digest}")?;
    writeln!(
        out,
        "outbox        {} pending, {} sent, {} failed, {} skipped; {} opted out",
        outbox.n_pending,
        outbox.n_sent,
        outbox.failed.len(),
        outbox.n_skipped,
        outbox.n_opted_out
    )?;
    if !outbox.retrying.is_empty() {
        writeln!(out, "retrying")?;
        for (email, attempts, reason) in &outbox.retrying {
            writeln!(out, "  {email} ({attempts} attempts): {reason}")?;
        }
    }
    if !outbox.failed.is_empty() {
        writeln!(out, "failed")?;
        for (period, email, reason) in &outbox.failed {
            writeln!(out, "  {period} {email}: {reason}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let checked = Config::for_command(file).and_then(|config| {
        crate::render::html::Templates::load(&config.templates)?;
        Ok(config)
    });
    let config = match checked {
        Ok(config) => config,
        Err(error) => {
            eprintln!("twinfeed: {error:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let source = file.map_or_else(|| "built-in defaults".into(), |f| f.display().to_string());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{source}: ok")?;
    writeln!(out, "  inbox     {}", config.inbox.display())?;
    writeln!(out, "  output    {}", config.output.display())?;
    writeln!(out, "  state     {}", config.state.display())?;
    writeln!(out, "  templates {}", config.templates.display())?;
    writeln!(out, "  base_url  {}", config.base_url)?;
    writeln!(out, "  timezone  {}", config.timezone.name())?;
    writeln!(out, "  items     {} per feed", config.feed_items)?;
    let watch = &config.watch;
    writeln!(
        out,
        "  watch     {:?}, settle {} ms, poll {} ms",
        watch.mode,
        watch.settle.as_millis(),
        watch.poll.as_millis()
    )?;
    match config.serve {
        Some(address) => writeln!(out, "  serve     http://{address}/")?,
        None => writeln!(out, "  serve     off")?,
    }
    let digest = &config.digest;
    let next = crate::digest::next_tick(&config, chrono::Utc::now()).map_or_else(
        || "never".to_string(),
        |tick| tick.with_timezone(&config.timezone).to_rfc3339(),
    );
    writeln!(
        out,
        "  digest    {}, \"{}\" in {} (next {next}), {} recipients",
        if digest.enabled { "on" } else { "off" },
        digest.schedule.pattern,
        config.timezone.name(),
        digest.recipients.len()
    )?;
    let smtp = &digest.smtp;
    writeln!(
        out,
        "  smtp      {}:{} {:?}{}",
        smtp.host,
        smtp.port,
        smtp.security,
        if smtp.username.is_empty() {
            String::new()
        } else {
            format!(", user {}", smtp.username)
        }
    )?;
    if digest.enabled && !smtp.username.is_empty() {
        if let Err(error) = smtp.password.read() {
            writeln!(out, "  warning   {error:#}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON shape of `inspect --json` for an accepted file.
#[derive(Serialize)]
struct InspectJson<'a> {
    file: &'a str,
    encoding: &'a str,
    #[serde(flatten)]
    article: &'a Article,
}

/// The JSON shape of `inspect --json` for a rejected file.
#[derive(Serialize)]
struct RejectedJson<'a> {
    file: &'a str,
    rejected: String,
}

fn inspect(path: &Path, json: bool, max_bytes: u64) -> anyhow::Result<ExitCode> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut stdout = std::io::stdout().lock();
    match ingest::ingest_file(path, max_bytes) {
        Ok(ingested) => {
            if json {
                let shape = InspectJson {
                    file: &name,
                    encoding: ingested.encoding,
                    article: &ingested.article,
                };
                serde_json::to_writer_pretty(&mut stdout, &shape)?;
                writeln!(stdout)?;
            } else {
                write_report(&mut stdout, &name, &ingested)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(IngestError::Rejected(rejection)) => {
            eprintln!("twinfeed: {}: rejected: {rejection}", path.display());
            if json {
                let shape = RejectedJson {
                    file: &name,
                    rejected: rejection.to_string(),
                };
                serde_json::to_writer_pretty(&mut stdout, &shape)?;
                writeln!(stdout)?;
            }
            Ok(ExitCode::from(1))
        }
        Err(IngestError::Io(error)) => {
            Err(error).with_context(|| format!("cannot read {}", path.display()))
        }
    }
}

/// The human-readable form of `inspect`.
fn write_report(out: &mut impl Write, name: &str, ingested: &Ingested) -> std::io::Result<()> {
    let article = &ingested.article;
    let or_none = |value: Option<String>| value.unwrap_or_else(|| "(none)".into());
    writeln!(out, "file      {name}")?;
    writeln!(out, "encoding  {}", ingested.encoding)?;
    writeln!(
        out,
        "date      {}",
        or_none(article.date.map(|d| d.to_string()))
    )?;
    writeln!(out, "source    {}", or_none(article.source.clone()))?;
    writeln!(out, "keywords  {}", article.keywords.join(", "))?;
    for (label, item) in [("zh", &article.zh), ("en", &article.en)] {
        writeln!(out)?;
        match item {
            Some(item) => write_item(out, item)?,
            None => writeln!(out, "[{label}] (no text)")?,
        }
    }
    if !article.notes.is_empty() {
        writeln!(out, "\nnotes")?;
        for note in &article.notes {
            writeln!(out, "  - {note}")?;
        }
    }
    Ok(())
}

fn write_item(out: &mut impl Write, item: &Item) -> std::io::Result<()> {
    let origin = if item.title_explicit {
        "title line"
    } else {
        "derived"
    };
    writeln!(out, "[{}] {}  ({origin})", item.lang.as_str(), item.title)?;
    writeln!(out, "summary: {}", item.summary)?;
    for (index, paragraph) in item.paragraphs.iter().enumerate() {
        writeln!(out, "  {:>2}. {paragraph}", index + 1)?;
    }
    Ok(())
}
