//! The configuration: `config/twinfeed.toml` parsed into a raw struct (every key with
//! its default, unknown keys refused), then validated into a [`Config`] with paths
//! resolved, the base URL and time zone parsed, and errors that name the file and key.
//!
//! This module reads one file and knows nothing of what the settings are used for.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use url::Url;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from; `None` for the built-in defaults.
    pub file: Option<PathBuf>,
    pub inbox: PathBuf,
    pub output: PathBuf,
    pub state: PathBuf,
    /// Templates that replace the built-in ones of the same name.
    pub templates: PathBuf,
    /// Always ends with `/`, so article URLs join onto it.
    pub base_url: Url,
    pub title_zh: String,
    pub title_en: String,
    pub description_zh: String,
    pub description_en: String,
    pub timezone: Tz,
    pub feed_items: usize,
    pub zh_variants: Vec<ZhVariant>,
    /// Largest article file read, in bytes; larger ones are rejected unread.
    pub max_file_bytes: u64,
    pub watch: Watch,
    /// Where the built-in HTTP server listens; `None` when it is off.
    pub serve: Option<std::net::SocketAddr>,
    pub digest: Digest,
}

/// The digest newsletter's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// Whether `twinfeed run` sends digests on the schedule.
    pub enabled: bool,
    /// When digests are composed, in `site.timezone`.
    pub schedule: croner::Cron,
    pub from: lettre::message::Mailbox,
    /// minijinja templates for the subject, given `title`, `date` and `count`.
    pub subject_zh: String,
    pub subject_en: String,
    /// Most items listed per language; the rest are counted and linked.
    pub max_items: usize,
    /// The first retry delay after a temporary failure; it doubles up to an hour.
    pub retry: std::time::Duration,
    /// How long after composing a delivery is retried before it is given up.
    pub give_up: std::time::Duration,
    /// Each address once, in the order written.
    pub recipients: Vec<Recipient>,
    pub smtp: Smtp,
}

/// One address the digest goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub email: lettre::Address,
    pub lang: Edition,
}

/// Which sections a digest has: Chinese, English or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    Zh,
    En,
    Both,
}

impl Edition {
    pub const ALL: [Edition; 3] = [Edition::Zh, Edition::En, Edition::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Zh => "zh",
            Edition::En => "en",
            Edition::Both => "both",
        }
    }

    pub fn parse(text: &str) -> Option<Edition> {
        Edition::ALL
            .into_iter()
            .find(|edition| edition.as_str() == text)
    }
}

/// The mail server digests are handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Empty for no authentication.
    pub username: String,
    pub password: PasswordSource,
    /// Extra PEM certificates trusted for this server (a private CA, a test server).
    pub ca_file: Option<PathBuf>,
    /// How long one SMTP command may take.
    pub timeout: std::time::Duration,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: loopback hosts only.
    None,
}

/// Where the SMTP password is read from when a delivery starts; never the TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    File(PathBuf),
}

impl PasswordSource {
    /// The password, or an error that says where it was looked for.
    pub fn read(&self) -> anyhow::Result<String> {
        match self {
            PasswordSource::Env(name) => std::env::var(name).with_context(|| {
                format!("the SMTP password is read from the environment variable {name}, which is not set")
            }),
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the SMTP password file {}", path.display())
                })?;
                Ok(text.trim_end_matches(['\r', '\n']).to_string())
            }
        }
    }
}

/// How the daemon notices inbox changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub mode: WatchMode,
    /// How long a file must stay unchanged before it is taken, when nothing says it
    /// is complete (no close after writing, no rename into the inbox).
    pub settle: std::time::Duration,
    /// How often the inbox is listed in `poll` mode.
    pub poll: std::time::Duration,
    /// How often the whole inbox is reconciled anyway, in case an event was missed;
    /// `None` for never.
    pub rescan: Option<std::time::Duration>,
}

/// Kernel notifications, or listing the folder at intervals (network file systems).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    Native,
    Poll,
}

/// An optional extra Chinese feed converted to one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ZhVariant {
    Hans,
    Hant,
}

impl ZhVariant {
    /// The language tag of the converted text, which is also the feed's folder.
    pub fn tag(self) -> crate::formatter::lang::LangTag {
        match self {
            ZhVariant::Hans => crate::formatter::lang::LangTag::ZhHans,
            ZhVariant::Hant => crate::formatter::lang::LangTag::ZhHant,
        }
    }
}

/// The file as written: every field has its default, and unknown keys are errors.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    paths: RawPaths,
    input: RawInput,
    site: RawSite,
    feed: RawFeed,
    watch: RawWatch,
    serve: RawServe,
    digest: RawDigest,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawDigest {
    /// Whether `twinfeed run` sends digests. Default false.
    enabled: bool,
    /// Five-field cron, in `site.timezone`. Default `0 8 * * *`.
    schedule: String,
    from: String,
    subject_zh: String,
    subject_en: String,
    /// Default 50.
    max_items: usize,
    /// First retry delay after a temporary failure, doubling up to an hour. Default 60.
    retry_secs: u64,
    /// Deliveries still failing this long after composing are given up. Default 48.
    give_up_hours: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recipients: Vec<RawRecipient>,
    smtp: RawSmtp,
}

impl Default for RawDigest {
    fn default() -> Self {
        RawDigest {
            enabled: false,
            schedule: "0 8 * * *".into(),
            from: "twinfeed <digest@example.org>".into(),
            subject_zh: "{{ title }}\u{FF1A}{{ count }} \u{7BC7}\u{65B0}\u{6587}\u{7AE0}\u{FF08}{{ date }}\u{FF09}".into(),
            subject_en: "{{ title }}: {{ count }} new {{ 'article' if count == 1 else 'articles' }} ({{ date }})".into(),
            max_items: 50,
            retry_secs: 60,
            give_up_hours: 48,
            recipients: Vec::new(),
            smtp: RawSmtp::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    email: String,
    lang: Edition,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: u16,
    security: Security,
    username: String,
    password_env: String,
    password_file: String,
    ca_file: String,
    timeout_secs: u64,
    /// Refused with a reason: a password never goes in the TOML.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<toml::Value>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        RawSmtp {
            host: "smtp.example.org".into(),
            port: 587,
            security: Security::Starttls,
            username: String::new(),
            password_env: "TWINFEED_SMTP_PASSWORD".into(),
            password_file: String::new(),
            ca_file: String::new(),
            timeout_secs: 30,
            password: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawWatch {
    /// `native` (inotify) or `poll`. Default `native`.
    mode: WatchMode,
    /// Quiet period for files not known to be complete. Default 300.
    settle_ms: u64,
    /// Listing interval in `poll` mode. Default 1000.
    poll_ms: u64,
    /// Full reconciliation interval; 0 for never. Default 60.
    rescan_minutes: u64,
}

impl Default for RawWatch {
    fn default() -> Self {
        RawWatch {
            mode: WatchMode::Native,
            settle_ms: 300,
            poll_ms: 1000,
            rescan_minutes: 60,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawServe {
    /// Whether `twinfeed run` serves the output folder. Default true.
    enabled: bool,
    /// Address and port. Default `127.0.0.1:8080`.
    listen: String,
}

impl Default for RawServe {
    fn default() -> Self {
        RawServe {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawInput {
    /// Largest article file read, in bytes. Default 10485760 (10 MiB).
    max_file_bytes: u64,
}

impl Default for RawInput {
    fn default() -> Self {
        RawInput {
            max_file_bytes: crate::decode::DEFAULT_MAX_BYTES,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawPaths {
    /// Where article files arrive. Default `inbox`.
    inbox: PathBuf,
    /// Where feeds and pages are published. Default `public`.
    output: PathBuf,
    /// The state database. Default `state/twinfeed.db`.
    state: PathBuf,
    /// Templates that replace the built-in ones. Default `templates`.
    templates: PathBuf,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            inbox: "inbox".into(),
            output: "public".into(),
            state: "state/twinfeed.db".into(),
            templates: "templates".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawSite {
    /// The public address of the output folder. Default `http://127.0.0.1:8080/`.
    base_url: String,
    title_zh: String,
    title_en: String,
    description_zh: String,
    description_en: String,
    /// An IANA time zone for dates shown to people and the digest schedule.
    /// Default `Asia/Shanghai`.
    timezone: String,
}

impl Default for RawSite {
    fn default() -> Self {
        RawSite {
            base_url: "http://127.0.0.1:8080/".into(),
            title_zh: "twinfeed 中文".into(),
            title_en: "twinfeed English".into(),
            description_zh: "双语新闻的中文条目".into(),
            description_en: "The English items of bilingual news".into(),
            timezone: "Asia/Shanghai".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct RawFeed {
    /// How many items each feed holds, newest first. Default 50.
    items: usize,
    /// Extra Chinese feeds converted to one script: `hans`, `hant`. Default none.
    zh_variants: Vec<ZhVariant>,
}

impl Default for RawFeed {
    fn default() -> Self {
        RawFeed {
            items: 50,
            zh_variants: Vec::new(),
        }
    }
}

/// Largest `feed.items` accepted: feeds are for recent items; archives come later.
const MAX_FEED_ITEMS: usize = 10_000;

impl Config {
    /// The built-in defaults, with paths relative to `base_dir` (the working folder).
    pub fn defaults(base_dir: &Path) -> Config {
        validate(RawConfig::default(), base_dir, None).expect("the built-in defaults are valid")
    }

    /// Reads and validates a config file; paths in it are relative to its folder.
    pub fn load(file: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read config file {}", file.display()))?;
        let base_dir = file.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base_dir, Some(file))
    }

    /// Parses and validates config text. `file` names it in error messages.
    pub fn parse(text: &str, base_dir: &Path, file: Option<&Path>) -> anyhow::Result<Config> {
        let name = file.map_or_else(|| "config".to_string(), |f| f.display().to_string());
        let raw: RawConfig =
            toml::from_str(text).map_err(|error| anyhow::anyhow!(describe(&name, text, &error)))?;
        validate(raw, base_dir, file).with_context(|| format!("{name}: invalid configuration"))
    }

    /// The config for a command: the file given with `--config`, else the built-in
    /// defaults relative to the working folder.
    pub fn for_command(file: Option<&Path>) -> anyhow::Result<Config> {
        match file {
            Some(file) => Config::load(file),
            None => Ok(Config::defaults(Path::new("."))),
        }
    }
}

/// A TOML error as one line naming the file, the full key and the position:
/// "twinfeed.toml: `site.base_ulr`: unknown field `base_ulr`, expected one of … (line 2)".
fn describe(name: &str, text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return format!("{name}: {message}");
    };
    let before = &text[..span.start.min(text.len())];
    let line_number = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let section = before
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|header| header.trim_matches(['[', ']']).trim());
    let key = line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    match (section, key) {
        (Some(section), Some(key)) => {
            format!("{name}: `{section}.{key}`: {message} (line {line_number})")
        }
        (None, Some(key)) => format!("{name}: `{key}`: {message} (line {line_number})"),
        _ => format!("{name}: {message} (line {line_number})"),
    }
}

fn validate(raw: RawConfig, base_dir: &Path, file: Option<&Path>) -> anyhow::Result<Config> {
    let base_url = parse_base_url(&raw.site.base_url)?;
    let timezone: Tz = raw.site.timezone.parse().map_err(|_| {
        anyhow::anyhow!(
            "`site.timezone` = {:?} is not an IANA time zone name, such as \"Asia/Shanghai\" or \"UTC\"",
            raw.site.timezone
        )
    })?;
    if raw.feed.items == 0 || raw.feed.items > MAX_FEED_ITEMS {
        bail!(
            "`feed.items` = {} is out of range: it must be from 1 to {MAX_FEED_ITEMS}",
            raw.feed.items
        );
    }
    let resolve = |path: &Path| -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        }
    };
    if raw.input.max_file_bytes == 0 {
        bail!("`input.max_file_bytes` must be more than 0");
    }
    let watch = validate_watch(&raw.watch)?;
    let listen: std::net::SocketAddr = raw.serve.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "`serve.listen` = {:?} is not an address and port, such as \"127.0.0.1:8080\" or \"[::]:8080\"",
            raw.serve.listen
        )
    })?;
    let mut zh_variants: Vec<ZhVariant> = Vec::new();
    for variant in raw.feed.zh_variants {
        if !zh_variants.contains(&variant) {
            zh_variants.push(variant);
        }
    }
    Ok(Config {
        file: file.map(Path::to_path_buf),
        inbox: resolve(&raw.paths.inbox),
        output: resolve(&raw.paths.output),
        state: resolve(&raw.paths.state),
        templates: resolve(&raw.paths.templates),
        base_url,
        title_zh: raw.site.title_zh,
        title_en: raw.site.title_en,
        description_zh: raw.site.description_zh,
        description_en: raw.site.description_en,
        timezone,
        feed_items: raw.feed.items,
        zh_variants,
        max_file_bytes: raw.input.max_file_bytes,
        watch,
        serve: raw.serve.enabled.then_some(listen),
        digest: validate_digest(raw.digest, &resolve)?,
    })
}

/// Largest `digest.max_items`: a digest is a summary, not an archive.
const MAX_DIGEST_ITEMS: usize = 1000;

fn validate_digest(raw: RawDigest, resolve: &dyn Fn(&Path) -> PathBuf) -> anyhow::Result<Digest> {
    let schedule: croner::Cron = raw.schedule.parse().map_err(|error| {
        anyhow::anyhow!(
            "`digest.schedule` = {:?} is not a five-field cron schedule such as \"0 8 * * *\": {error}",
            raw.schedule
        )
    })?;
    let from: lettre::message::Mailbox = raw.from.parse().map_err(|error| {
        anyhow::anyhow!(
            "`digest.from` = {:?} is not an address such as \"twinfeed <digest@example.org>\": {error}",
            raw.from
        )
    })?;
    if raw.max_items == 0 || raw.max_items > MAX_DIGEST_ITEMS {
        bail!(
            "`digest.max_items` = {} is out of range: it must be from 1 to {MAX_DIGEST_ITEMS}",
            raw.max_items
        );
    }
    if raw.retry_secs == 0 || raw.retry_secs > 3600 {
        bail!(
            "`digest.retry_secs` = {} is out of range: it must be from 1 to 3600",
            raw.retry_secs
        );
    }
    if raw.give_up_hours == 0 || raw.give_up_hours > 24 * 30 {
        bail!(
            "`digest.give_up_hours` = {} is out of range: it must be from 1 to 720",
            raw.give_up_hours
        );
    }
    for (key, template) in [
        ("subject_zh", &raw.subject_zh),
        ("subject_en", &raw.subject_en),
    ] {
        minijinja::Environment::new()
            .template_from_str(template)
            .map_err(|error| anyhow::anyhow!("`digest.{key}` is not a valid template: {error}"))?;
    }
    let mut recipients: Vec<Recipient> = Vec::new();
    for raw_recipient in raw.recipients {
        let email: lettre::Address = raw_recipient.email.parse().map_err(|error| {
            anyhow::anyhow!(
                "`digest.recipients` has {:?}, which is not an email address: {error}",
                raw_recipient.email
            )
        })?;
        if recipients
            .iter()
            .any(|known| AsRef::<str>::as_ref(&known.email).eq_ignore_ascii_case(email.as_ref()))
        {
            bail!("`digest.recipients` lists {email} twice");
        }
        recipients.push(Recipient {
            email,
            lang: raw_recipient.lang,
        });
    }
    Ok(Digest {
        enabled: raw.enabled,
        schedule,
        from,
        subject_zh: raw.subject_zh,
        subject_en: raw.subject_en,
        max_items: raw.max_items,
        retry: std::time::Duration::from_secs(raw.retry_secs),
        give_up: std::time::Duration::from_secs(raw.give_up_hours * 3600),
        recipients,
        smtp: validate_smtp(raw.smtp, resolve)?,
    })
}

fn validate_smtp(raw: RawSmtp, resolve: &dyn Fn(&Path) -> PathBuf) -> anyhow::Result<Smtp> {
    if raw.password.is_some() {
        bail!(
            "`digest.smtp.password` is not accepted: a password never goes in the config file; \
             name an environment variable with `password_env` or a file with `password_file`"
        );
    }
    if raw.host.trim().is_empty() {
        bail!("`digest.smtp.host` is empty");
    }
    if raw.security == Security::None && !is_loopback(&raw.host) {
        bail!(
            "`digest.smtp.security` = \"none\" sends mail and password in the clear, so it is \
             only allowed to a loopback host, not {:?}; use \"starttls\" or \"tls\"",
            raw.host
        );
    }
    if raw.timeout_secs == 0 || raw.timeout_secs > 600 {
        bail!(
            "`digest.smtp.timeout_secs` = {} is out of range: it must be from 1 to 600",
            raw.timeout_secs
        );
    }
    let password = if raw.password_file.is_empty() {
        if raw.password_env.is_empty() && !raw.username.is_empty() {
            bail!(
                "`digest.smtp.username` is set but neither `password_env` nor `password_file` is"
            );
        }
        PasswordSource::Env(raw.password_env)
    } else {
        PasswordSource::File(resolve(Path::new(&raw.password_file)))
    };
    Ok(Smtp {
        host: raw.host,
        port: raw.port,
        security: raw.security,
        username: raw.username,
        password,
        ca_file: (!raw.ca_file.is_empty()).then(|| resolve(Path::new(&raw.ca_file))),
        timeout: std::time::Duration::from_secs(raw.timeout_secs),
    })
}

/// `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Longest `watch.settle_ms`: a file that takes longer to settle is taken when it
/// does, but an hour's delay would look like a lost file.
const MAX_SETTLE_MS: u64 = 600_000;

fn validate_watch(raw: &RawWatch) -> anyhow::Result<Watch> {
    if raw.settle_ms > MAX_SETTLE_MS {
        bail!(
            "`watch.settle_ms` = {} is out of range: it must be at most {MAX_SETTLE_MS}",
            raw.settle_ms
        );
    }
    if !(10..=3_600_000).contains(&raw.poll_ms) {
        bail!(
            "`watch.poll_ms` = {} is out of range: it must be from 10 to 3600000",
            raw.poll_ms
        );
    }
    let minutes = std::time::Duration::from_secs(60);
    Ok(Watch {
        mode: raw.mode,
        settle: std::time::Duration::from_millis(raw.settle_ms),
        poll: std::time::Duration::from_millis(raw.poll_ms),
        rescan: (raw.rescan_minutes > 0)
            .then(|| minutes.saturating_mul(u32::try_from(raw.rescan_minutes).unwrap_or(u32::MAX))),
    })
}

/// An absolute http(s) URL without query or fragment, given a trailing `/`.
fn parse_base_url(text: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(text)
        .with_context(|| format!("`site.base_url` = {text:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("`site.base_url` = {text:?} must start with http:// or https://");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("`site.base_url` = {text:?} must not have a query or fragment");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse(
            text,
            Path::new("/srv/twinfeed"),
            Some(Path::new("twinfeed.toml")),
        )
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn empty_file_is_the_defaults_and_paths_are_relative_to_it() {
        let config = parse("").expect("an empty file is valid");
        assert_eq!(config.inbox, Path::new("/srv/twinfeed/inbox"));
        assert_eq!(config.state, Path::new("/srv/twinfeed/state/twinfeed.db"));
        assert_eq!(config.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(config.feed_items, 50);
        let defaults = Config::defaults(Path::new("/srv/twinfeed"));
        assert_eq!(
            Config {
                file: None,
                ..config
            },
            defaults
        );
    }

    #[test]
    fn shipped_config_file_is_the_defaults() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/twinfeed.toml");
        // Every key is in the file, with its default value.
        let text = std::fs::read_to_string(&file).expect("the shipped config is readable");
        let written: toml::Table = text.parse().expect("the shipped config is TOML");
        let defaults = toml::Table::try_from(RawConfig::default()).expect("defaults serialize");
        assert_eq!(written, defaults);
        let shipped = Config::load(&file).expect("the shipped config is valid");
        let folder = file.parent().expect("the file has a folder");
        assert_eq!(
            Config {
                file: None,
                ..shipped
            },
            Config::defaults(folder)
        );
    }

    #[test]
    fn values_are_read_and_checked() {
        let config = parse(
            "[paths]\noutput = \"/var/www/feeds\"\n[site]\nbase_url = \"https://news.example.org/feeds\"\ntimezone = \"UTC\"\n[feed]\nitems = 20\nzh_variants = [\"hans\", \"hant\"]\n",
        )
        .expect("valid");
        assert_eq!(config.output, Path::new("/var/www/feeds"));
        assert_eq!(config.base_url.as_str(), "https://news.example.org/feeds/");
        assert_eq!(config.feed_items, 20);
        assert_eq!(config.zh_variants, [ZhVariant::Hans, ZhVariant::Hant]);
        let daemon = parse(
            "[watch]\nmode = \"poll\"\nsettle_ms = 50\nrescan_minutes = 0\n[serve]\nlisten = \"[::1]:9000\"\n",
        )
        .expect("valid");
        assert_eq!(daemon.watch.mode, WatchMode::Poll);
        assert_eq!(daemon.watch.settle, std::time::Duration::from_millis(50));
        assert_eq!(daemon.watch.rescan, None);
        assert_eq!(daemon.serve, "[::1]:9000".parse().ok());
        let off = parse("[serve]\nenabled = false\n").expect("valid");
        assert_eq!(off.serve, None);
    }

    #[test]
    fn digest_settings_are_read_and_checked() {
        let config = parse(
            "[digest]\nenabled = true\nschedule = \"30 7 * * 1-5\"\nfrom = \"\u{65B0}\u{95FB} <news@example.org>\"\n\
             [[digest.recipients]]\nemail = \"a@example.org\"\nlang = \"both\"\n\
             [[digest.recipients]]\nemail = \"b@example.org\"\nlang = \"zh\"\n\
             [digest.smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword_file = \"secret\"\n",
        )
        .expect("valid");
        let digest = &config.digest;
        assert!(digest.enabled);
        assert_eq!(digest.schedule.pattern.to_string(), "30 7 * * 1-5");
        assert_eq!(digest.from.name.as_deref(), Some("\u{65B0}\u{95FB}"));
        assert_eq!(digest.recipients.len(), 2);
        assert_eq!(digest.recipients[0].lang, Edition::Both);
        assert_eq!(digest.smtp.security, Security::None);
        assert_eq!(
            digest.smtp.password,
            PasswordSource::File(PathBuf::from("/srv/twinfeed/secret"))
        );
        let defaults = parse("").expect("valid");
        assert!(!defaults.digest.enabled);
        assert_eq!(
            defaults.digest.smtp.password,
            PasswordSource::Env("TWINFEED_SMTP_PASSWORD".into())
        );
    }

    #[test]
    fn digest_errors_name_the_key() {
        let password = error("[digest.smtp]\npassword = \"hunter2\"\n");
        assert!(
            password.contains("`digest.smtp.password` is not accepted"),
            "{password}"
        );
        assert!(!password.contains("hunter2"), "{password}");
        let clear = error("[digest.smtp]\nhost = \"mail.example.org\"\nsecurity = \"none\"\n");
        assert!(clear.contains("only allowed to a loopback host"), "{clear}");
        for host in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            let text = format!("[digest.smtp]\nhost = \"{host}\"\nsecurity = \"none\"\n");
            assert!(parse(&text).is_ok(), "{host}");
        }
        assert!(error("[digest]\nschedule = \"every day\"\n").contains("`digest.schedule`"));
        assert!(error("[digest]\nfrom = \"not an address\"\n").contains("`digest.from`"));
        assert!(error("[digest]\nmax_items = 0\n").contains("`digest.max_items` = 0"));
        assert!(error("[digest]\nsubject_en = \"{{ count\"\n").contains("`digest.subject_en`"));
        let twice = error(
            "[[digest.recipients]]\nemail = \"a@example.org\"\nlang = \"en\"\n\
             [[digest.recipients]]\nemail = \"A@example.org\"\nlang = \"zh\"\n",
        );
        assert!(twice.contains("lists A@example.org twice"), "{twice}");
        let lang = error("[[digest.recipients]]\nemail = \"a@example.org\"\nlang = \"fr\"\n");
        assert!(lang.contains("unknown variant `fr`"), "{lang}");
        let bad = error("[[digest.recipients]]\nemail = \"nobody\"\nlang = \"en\"\n");
        assert!(
            bad.contains("\"nobody\", which is not an email address"),
            "{bad}"
        );
    }

    #[test]
    fn error_messages_name_the_file_and_key() {
        assert_eq!(
            error("[site]\nbase_ulr = \"http://x/\"\n"),
            "twinfeed.toml: `site.base_ulr`: unknown field `base_ulr`, expected one of `base_url`, `title_zh`, `title_en`, `description_zh`, `description_en`, `timezone` (line 2)"
        );
        assert_eq!(
            error("[feed]\nitems = -1\n"),
            "twinfeed.toml: `feed.items`: invalid value: integer `-1`, expected usize (line 2)"
        );
        let section = error("# comment\n[feeds]\nitems = 3\n");
        assert!(section.contains("unknown field `feeds`"), "{section}");
        assert!(section.contains("line 2"), "{section}");
        assert!(error("[site\n").contains("line 1"));
        let zone = error("[site]\ntimezone = \"China/Beijing\"\n");
        assert_eq!(
            zone,
            "twinfeed.toml: invalid configuration: `site.timezone` = \"China/Beijing\" is not an IANA time zone name, such as \"Asia/Shanghai\" or \"UTC\""
        );
        assert!(error("[feed]\nitems = 0\n").contains("`feed.items` = 0 is out of range"));
        assert!(error("[site]\nbase_url = \"ftp://x/\"\n").contains("http:// or https://"));
        assert!(error("[site]\nbase_url = \"/feeds/\"\n").contains("not an absolute URL"));
        assert!(error("[feed]\nzh_variants = [\"hk\"]\n").contains("unknown variant `hk`"));
        assert!(error("[watch]\nmode = \"fanotify\"\n").contains("unknown variant `fanotify`"));
        assert!(error("[watch]\npoll_ms = 0\n").contains("`watch.poll_ms` = 0 is out of range"));
        assert!(error("[serve]\nlisten = \"localhost\"\n").contains("`serve.listen`"));
    }
}
