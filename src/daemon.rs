//! `twinfeed run`: the daemon. A publisher thread owns the [`Site`] and the inbox
//! watcher: it builds once at start (new, changed and deleted files while it was down),
//! then takes each batch of settled names through [`Site::update`]. The tokio runtime
//! serves the output folder, answers signals (SIGHUP reloads, SIGTERM/SIGINT stop after
//! the batch in progress) and talks to systemd (READY, WATCHDOG, RELOADING, STOPPING).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::Watcher;
use sd_notify::NotifyState;

use crate::build::Site;
use crate::config::{Config, WatchMode};
use crate::digest;
use crate::logging;
use crate::serve::{self, Files};
use crate::watch::{hints, Hint, Settler};

/// What the publisher thread is asked to do.
enum Message {
    Hint(Hint),
    /// Take this configuration, answering whether it was taken.
    Reload(Box<Config>, mpsc::Sender<anyhow::Result<()>>),
    Stop,
}

/// Longest wait after a failed build before the next try.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// How often the publisher thread wakes when idle, to show it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What the publisher thread shows the watchdog.
#[derive(Default)]
struct Liveness {
    /// Milliseconds since start of the last loop turn.
    beat_ms: AtomicI64,
    /// True while a build or update runs (it may take long and still be healthy).
    busy: AtomicBool,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config_file: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::for_command(config_file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("twinfeed-serve")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run_async(config, config_file.map(Path::to_path_buf)));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run_async(config: Config, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    // Handlers first: a SIGTERM during the first build is then taken after it.
    let signals = Signals::new()?;
    let liveness = Arc::new(Liveness::default());
    let (sender, receiver) = mpsc::channel();
    // The first build happens before anything is served, so the feeds exist (empty if
    // the inbox is) by the time the server answers.
    let (ready_sender, ready_receiver) = tokio::sync::oneshot::channel();
    let publisher = {
        let config = config.clone();
        let sender = sender.clone();
        let liveness = liveness.clone();
        std::thread::Builder::new()
            .name("twinfeed-publish".into())
            .spawn(move || publish_loop(config, sender, receiver, liveness, started, ready_sender))
            .context("cannot start the publisher thread")?
    };
    let files = match ready_receiver.await {
        Ok(Ok(())) => Arc::new(Files::new(&config.output)?),
        Ok(Err(error)) => {
            let _ = publisher.join();
            return Err(error);
        }
        Err(_) => {
            let _ = publisher.join();
            anyhow::bail!("the publisher thread stopped while starting");
        }
    };
    files.set_state(&config.state);
    let digest_stop = Arc::new(AtomicBool::new(false));
    let (digest_sender, digest_receiver) = mpsc::channel();
    let digest = {
        let config = config.clone();
        let stop = digest_stop.clone();
        std::thread::Builder::new()
            .name("twinfeed-digest".into())
            .spawn(move || digest::worker::run(config, digest_receiver, stop))
            .context("cannot start the digest thread")?
    };
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let server = match config.serve {
        Some(address) => {
            let listener = serve::bind(address).await;
            let listener = match listener {
                Ok(listener) => listener,
                Err(error) => {
                    let _ = sender.send(Message::Stop);
                    let _ = publisher.join();
                    return Err(error);
                }
            };
            log::info!(
                "serving {} at http://{}/",
                config.output.display(),
                listener.local_addr().unwrap_or(address)
            );
            Some(tokio::spawn(serve::serve(
                listener,
                files.clone(),
                stop_receiver,
            )))
        }
        None => None,
    };
    notify_systemd(&[
        NotifyState::Ready,
        NotifyState::Status("watching the inbox"),
    ]);
    let watchdog = sd_notify::watchdog_enabled().map(|interval| {
        let liveness = liveness.clone();
        tokio::spawn(watchdog_loop(interval, liveness, started))
    });
    let outcome = signal_loop(
        signals,
        &sender,
        &digest_sender,
        config,
        config_file.as_deref(),
        &files,
    )
    .await;
    notify_systemd(&[NotifyState::Stopping]);
    log::info!("stopping");
    let _ = stop_sender.send(true);
    let _ = sender.send(Message::Stop);
    // A delivery in progress is finished (or times out) before the thread ends.
    digest_stop.store(true, Ordering::SeqCst);
    let _ = digest_sender.send(digest::worker::Control::Wake);
    let _ = tokio::task::spawn_blocking(move || digest.join()).await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    // The batch in progress is finished before the thread ends.
    let joined = tokio::task::spawn_blocking(move || publisher.join()).await;
    if let Some(server) = server {
        let _ = server.await;
    }
    if !matches!(joined, Ok(Ok(()))) {
        anyhow::bail!("the publisher thread failed");
    }
    outcome
}

/// The signals the daemon answers.
struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            hangup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }
}

/// Waits for signals: SIGHUP reloads, SIGTERM and SIGINT return.
async fn signal_loop(
    signals: Signals,
    sender: &mpsc::Sender<Message>,
    digest_sender: &mpsc::Sender<digest::worker::Control>,
    mut config: Config,
    config_file: Option<&Path>,
    files: &Files,
) -> anyhow::Result<()> {
    let Signals {
        mut hangup,
        mut terminate,
        mut interrupt,
    } = signals;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = hangup.recv() => {
                notify_systemd(&[NotifyState::Reloading]);
                match reload(sender, &config, config_file, files).await {
                    Ok(new) => {
                        log::info!("reloaded {}", describe_source(config_file));
                        let _ = digest_sender
                            .send(digest::worker::Control::Reload(Box::new(new.clone())));
                        config = new;
                    }
                    Err(error) => log::error!("reload refused, the running configuration is kept: {error:#}"),
                }
                notify_systemd(&[NotifyState::Ready]);
            }
        }
    }
}

/// Reads the config file again and hands it to the publisher; the server follows a
/// new output folder. A listen address change needs a restart.
async fn reload(
    sender: &mpsc::Sender<Message>,
    old: &Config,
    config_file: Option<&Path>,
    files: &Files,
) -> anyhow::Result<Config> {
    let config = Config::for_command(config_file)?;
    let (answer_sender, answer) = mpsc::channel();
    sender
        .send(Message::Reload(Box::new(config.clone()), answer_sender))
        .map_err(|_| anyhow::anyhow!("the publisher thread has stopped"))?;
    tokio::task::spawn_blocking(move || answer.recv())
        .await
        .context("waiting for the publisher")?
        .map_err(|_| anyhow::anyhow!("the publisher thread has stopped"))??;
    if config.output != old.output {
        files.set_root(&config.output)?;
    }
    files.set_state(&config.state);
    if config.serve != old.serve {
        log::warn!("`serve` changed: restart twinfeed to listen on the new address");
    }
    Ok(config)
}

/// The publisher thread: first build, then batches of settled names, until `Stop`.
fn publish_loop(
    config: Config,
    sender: mpsc::Sender<Message>,
    receiver: mpsc::Receiver<Message>,
    liveness: Arc<Liveness>,
    started: Instant,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let opened = Site::open(config).and_then(|site| {
        // Watch first, then build: a file landing during the build is seen twice at
        // worst, never missed.
        let watcher = start_watcher(site.config(), sender.clone())?;
        Ok((site, watcher))
    });
    let (mut site, mut watcher) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let mut settler = Settler::new(&site.config().watch);
    liveness.busy.store(true, Ordering::Relaxed);
    match site.build(unix_now()) {
        Ok(built) => {
            logging::report(site.config(), &built, "built", log::Level::Debug);
            let _ = ready.send(Ok(()));
        }
        Err(error) => {
            let _ = ready.send(Err(error.context("the first build failed")));
            return;
        }
    }
    liveness.busy.store(false, Ordering::Relaxed);
    let mut next_rescan = site
        .config()
        .watch
        .rescan
        .map(|every| Instant::now() + every);
    let mut retry: Option<(Instant, Duration)> = None;
    loop {
        beat(&liveness, started);
        let now = Instant::now();
        let due = [settler.next_due(), next_rescan, retry.map(|(at, _)| at)]
            .into_iter()
            .flatten()
            .min();
        let wait = due.map_or(HEARTBEAT, |due| {
            due.saturating_duration_since(now).min(HEARTBEAT)
        });
        let first = match receiver.recv_timeout(wait) {
            Ok(message) => Some(message),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Everything already queued joins this batch.
        for message in first.into_iter().chain(receiver.try_iter()) {
            match message {
                Message::Hint(hint) => settler.hint(hint, Instant::now()),
                Message::Stop => return,
                Message::Reload(config, answer) => {
                    let result = reload_site(&mut site, &mut watcher, *config, &sender);
                    if result.is_ok() {
                        settler.hint(Hint::Rescan, Instant::now());
                        next_rescan = site
                            .config()
                            .watch
                            .rescan
                            .map(|every| Instant::now() + every);
                    }
                    let _ = answer.send(result);
                }
            }
        }
        let now = Instant::now();
        if next_rescan.is_some_and(|at| at <= now) {
            settler.hint(Hint::Rescan, now);
            next_rescan = site.config().watch.rescan.map(|every| now + every);
        }
        if retry.is_some_and(|(at, _)| at <= now) {
            settler.hint(Hint::Rescan, now);
        }
        let batch = settler.take(now);
        if !batch.rescan && batch.names.is_empty() {
            continue;
        }
        liveness.busy.store(true, Ordering::Relaxed);
        let began = Instant::now();
        let result = if batch.rescan {
            site.build(unix_now()).map(|built| {
                let what = format!("rebuilt in {} ms", began.elapsed().as_millis());
                logging::report(site.config(), &built, &what, log::Level::Debug);
            })
        } else {
            site.update(&batch.names, unix_now()).map(|built| {
                if built.changed_outputs() || !built.reconciled.is_quiet() {
                    let what = format!("updated in {:.1} ms", began.elapsed().as_secs_f64() * 1e3);
                    logging::report(site.config(), &built, &what, log::Level::Info);
                }
            })
        };
        liveness.busy.store(false, Ordering::Relaxed);
        retry = match result {
            Ok(()) => {
                if retry.is_some() {
                    // The inbox may have been replaced (unmounted and mounted, moved
                    // back): watch it afresh.
                    match start_watcher(site.config(), sender.clone()) {
                        Ok(new_watcher) => watcher = new_watcher,
                        Err(error) => log::error!("{error:#}"),
                    }
                    log::info!("publishing works again");
                }
                None
            }
            Err(error) => {
                // The store keeps what was taken; a full build later brings the outputs
                // in line, however far this one got.
                let delay = retry.map_or(Duration::from_secs(1), |(_, delay)| {
                    (delay * 2).min(MAX_RETRY_DELAY)
                });
                log::error!(
                    "publishing failed, retrying in {} s: {error:#}",
                    delay.as_secs()
                );
                Some((Instant::now() + delay, delay))
            }
        };
    }
}

/// Takes a new configuration: templates and store first, then the watcher if the inbox
/// or the watch mode changed. On error the old configuration keeps running.
fn reload_site(
    site: &mut Site,
    watcher: &mut Box<dyn Watcher + Send>,
    config: Config,
    sender: &mpsc::Sender<Message>,
) -> anyhow::Result<()> {
    let rewatch = config.inbox != site.config().inbox || config.watch != site.config().watch;
    let new_watcher = if rewatch {
        crate::build::create_inbox(&config)?;
        Some(start_watcher(&config, sender.clone())?)
    } else {
        None
    };
    site.reload(config)?;
    if let Some(new_watcher) = new_watcher {
        *watcher = new_watcher;
    }
    Ok(())
}

/// Starts watching the inbox named in `config`, sending hints to the publisher.
fn start_watcher(
    config: &Config,
    sender: mpsc::Sender<Message>,
) -> anyhow::Result<Box<dyn Watcher + Send>> {
    let inbox = std::fs::canonicalize(&config.inbox)
        .with_context(|| format!("cannot watch the inbox {}", config.inbox.display()))?;
    let watched = inbox.clone();
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) => {
            for hint in hints(&watched, &event) {
                let _ = sender.send(Message::Hint(hint));
            }
        }
        Err(error) => {
            log::warn!(
                "watching {}: {error}; looking at the whole inbox",
                watched.display()
            );
            let _ = sender.send(Message::Hint(Hint::Rescan));
        }
    };
    let mut watcher: Box<dyn Watcher + Send> = match config.watch.mode {
        WatchMode::Native => Box::new(
            notify::RecommendedWatcher::new(handler, notify::Config::default())
                .context("cannot start watching the inbox")?,
        ),
        WatchMode::Poll => Box::new(
            notify::PollWatcher::new(
                handler,
                notify::Config::default().with_poll_interval(config.watch.poll),
            )
            .context("cannot start polling the inbox")?,
        ),
    };
    watcher
        .watch(&inbox, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch the inbox {}", inbox.display()))?;
    Ok(watcher)
}

/// Pings the systemd watchdog at half its interval while the publisher thread is alive:
/// it turned its loop recently, or it is inside a build (which may be long).
async fn watchdog_loop(interval: Duration, liveness: Arc<Liveness>, started: Instant) {
    let mut ticks = tokio::time::interval(interval / 2);
    loop {
        ticks.tick().await;
        let beat = Duration::from_millis(
            u64::try_from(liveness.beat_ms.load(Ordering::Relaxed)).unwrap_or(0),
        );
        let since_beat = started.elapsed().saturating_sub(beat);
        if liveness.busy.load(Ordering::Relaxed) || since_beat < interval / 2 {
            notify_systemd(&[NotifyState::Watchdog]);
        } else {
            log::error!(
                "the publisher thread has not answered for {} s",
                since_beat.as_secs()
            );
        }
    }
}

fn beat(liveness: &Liveness, started: Instant) {
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    liveness.beat_ms.store(ms, Ordering::Relaxed);
}

fn notify_systemd(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd: {error}");
    }
}

fn describe_source(config_file: Option<&Path>) -> String {
    config_file.map_or_else(
        || "the built-in defaults".into(),
        |file| file.display().to_string(),
    )
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
