//! Watching the inbox: notify's events turned into hints about file names, and the
//! [`Settler`] that decides when a file is complete enough to take. Events are only
//! hints; whoever takes a name looks at the file itself, so a hint for a file that is
//! already gone is kept (it is how deletes are seen), never dropped.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind};

use crate::config::{Watch, WatchMode};
use crate::inbox::is_article_name;

/// What an event says about one inbox name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Closed after writing, or renamed into the inbox: complete now.
    Complete(String),
    /// Gone: removed or renamed away. Taken now, so it is retracted.
    Gone(String),
    /// Created or written, and maybe still being written: taken once it settles.
    Changed(String),
    /// Events may have been lost (a queue overflow, the inbox itself moved): look at
    /// the whole inbox.
    Rescan,
}

/// The hints in one notify event for files directly inside `inbox`. Names that are
/// not articles' (`.swp`, `.part`, dotfiles …) give no hint; a rename from `a.part`
/// to `a.txt` gives `Complete("a.txt")`.
pub fn hints(inbox: &Path, event: &Event) -> Vec<Hint> {
    if event.need_rescan() {
        return vec![Hint::Rescan];
    }
    let names = || event.paths.iter().filter_map(|path| name_in(inbox, path));
    let touches_inbox = event.paths.iter().any(|path| path == inbox);
    let mut hints: Vec<Hint> = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            names().map(Hint::Complete).collect()
        }
        EventKind::Access(_) => Vec::new(),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            names().map(Hint::Complete).collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
            names().map(Hint::Gone).collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            // paths[0] is the old name, paths[1] the new.
            let from = event.paths.first().and_then(|path| name_in(inbox, path));
            let to = event.paths.get(1).and_then(|path| name_in(inbox, path));
            from.map(Hint::Gone)
                .into_iter()
                .chain(to.map(Hint::Complete))
                .collect()
        }
        // Create, Modify (data, metadata, a rename of unknown direction), Any, Other.
        _ => names().map(Hint::Changed).collect(),
    };
    if touches_inbox && !matches!(event.kind, EventKind::Access(_)) {
        // Something happened to the inbox folder itself (moved, removed, replaced).
        hints.push(Hint::Rescan);
    }
    hints
}

/// The article name of a path directly inside `inbox`, if it is one.
fn name_in(inbox: &Path, path: &Path) -> Option<String> {
    if path.parent()? != inbox {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    is_article_name(name).then(|| name.to_string())
}

/// Decides when each hinted name is ready to take: complete and gone names at once,
/// changed names once they have had no event for the settle period.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    /// Names that are only changed, with the time they become ready.
    waiting: HashMap<String, Instant>,
    ready: BTreeSet<String>,
    rescan: bool,
}

/// What is ready to take now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub names: Vec<String>,
    /// The whole inbox must be reconciled.
    pub rescan: bool,
}

impl Settler {
    /// A settler for this watch configuration. In poll mode a change is seen only at
    /// the next listing, so a file must also stay unchanged for one poll interval.
    pub fn new(watch: &Watch) -> Settler {
        let settle = match watch.mode {
            WatchMode::Native => watch.settle,
            WatchMode::Poll => watch.settle + watch.poll,
        };
        Settler {
            settle,
            waiting: HashMap::new(),
            ready: BTreeSet::new(),
            rescan: false,
        }
    }

    /// Takes one hint, received at `now`.
    pub fn hint(&mut self, hint: Hint, now: Instant) {
        match hint {
            Hint::Complete(name) | Hint::Gone(name) => {
                self.waiting.remove(&name);
                self.ready.insert(name);
            }
            Hint::Changed(name) => {
                // A name already complete is taken as it is now anyway; a later close
                // or change brings it back.
                if !self.ready.contains(&name) {
                    self.waiting.insert(name, now + self.settle);
                }
            }
            Hint::Rescan => self.rescan = true,
        }
    }

    /// When the next waiting name becomes ready, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        if self.rescan || !self.ready.is_empty() {
            return Some(Instant::now());
        }
        self.waiting.values().min().copied()
    }

    /// True if nothing is ready or waiting.
    pub fn is_idle(&self) -> bool {
        !self.rescan && self.ready.is_empty() && self.waiting.is_empty()
    }

    /// Removes and returns what is ready at `now`.
    pub fn take(&mut self, now: Instant) -> Ready {
        let settled: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in settled {
            self.waiting.remove(&name);
            self.ready.insert(name);
        }
        let ready = Ready {
            names: std::mem::take(&mut self.ready).into_iter().collect(),
            rescan: self.rescan,
        };
        self.rescan = false;
        ready
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use notify::event::{CreateKind, DataChange, RemoveKind};

    use super::*;

    fn event(kind: EventKind, names: &[&str]) -> Event {
        let mut event = Event::new(kind);
        for name in names {
            event = event.add_path(PathBuf::from("/srv/inbox").join(name));
        }
        event
    }

    fn hints_of(kind: EventKind, names: &[&str]) -> Vec<Hint> {
        hints(Path::new("/srv/inbox"), &event(kind, names))
    }

    #[test]
    fn events_become_hints() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(
            hints_of(close, &["a.txt"]),
            [Hint::Complete("a.txt".into())]
        );
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(
            hints_of(both, &["a.txt.part", "a.txt"]),
            [Hint::Complete("a.txt".into())]
        );
        assert_eq!(
            hints_of(both, &["a.txt", "b.txt"]),
            [Hint::Gone("a.txt".into()), Hint::Complete("b.txt".into())]
        );
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(hints_of(to, &["b.txt"]), [Hint::Complete("b.txt".into())]);
        let removed = EventKind::Remove(RemoveKind::File);
        assert_eq!(hints_of(removed, &["b.txt"]), [Hint::Gone("b.txt".into())]);
        let created = EventKind::Create(CreateKind::File);
        assert_eq!(
            hints_of(created, &["c.txt"]),
            [Hint::Changed("c.txt".into())]
        );
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(
            hints_of(written, &["c.txt"]),
            [Hint::Changed("c.txt".into())]
        );
        for temporary in [".c.txt.swp", "c.txt~", "#c.txt#", "c.tmp", "c.crdownload"] {
            assert_eq!(hints_of(written, &[temporary]), []);
            assert_eq!(hints_of(close, &[temporary]), []);
        }
        // Only direct children of the inbox.
        assert_eq!(hints_of(close, &["sub/a.txt"]), []);
        let inbox_gone = Event::new(removed).add_path(PathBuf::from("/srv/inbox"));
        assert_eq!(hints(Path::new("/srv/inbox"), &inbox_gone), [Hint::Rescan]);
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(hints(Path::new("/srv/inbox"), &overflow), [Hint::Rescan]);
    }

    fn settler(settle_ms: u64) -> Settler {
        Settler::new(&Watch {
            mode: WatchMode::Native,
            settle: Duration::from_millis(settle_ms),
            poll: Duration::from_secs(1),
            rescan: None,
        })
    }

    #[test]
    fn complete_and_gone_names_are_ready_at_once() {
        let mut settler = settler(300);
        let start = Instant::now();
        settler.hint(Hint::Changed("a.txt".into()), start);
        settler.hint(Hint::Complete("a.txt".into()), start);
        settler.hint(Hint::Gone("b.txt".into()), start);
        let ready = settler.take(start);
        assert_eq!(ready.names, ["a.txt", "b.txt"]);
        assert!(!ready.rescan);
        assert!(settler.is_idle());
    }

    #[test]
    fn changed_names_wait_until_quiet_for_the_settle_period() {
        let mut settler = settler(300);
        let start = Instant::now();
        let ms = Duration::from_millis;
        settler.hint(Hint::Changed("slow.txt".into()), start);
        // Written again every 200 ms: never quiet for 300 ms, so never ready.
        for step in 1..=5 {
            let now = start + ms(200 * step);
            assert_eq!(settler.take(now), Ready::default(), "at {step}");
            settler.hint(Hint::Changed("slow.txt".into()), now);
        }
        let last = start + ms(1000);
        assert_eq!(settler.next_due(), Some(last + ms(300)));
        assert_eq!(settler.take(last + ms(299)), Ready::default());
        assert_eq!(settler.take(last + ms(300)).names, ["slow.txt"]);
        assert!(settler.is_idle());
    }

    #[test]
    fn poll_mode_waits_a_poll_interval_more() {
        let mut settler = Settler::new(&Watch {
            mode: WatchMode::Poll,
            settle: Duration::from_millis(300),
            poll: Duration::from_millis(1000),
            rescan: None,
        });
        let start = Instant::now();
        settler.hint(Hint::Changed("a.txt".into()), start);
        assert_eq!(
            settler.next_due(),
            Some(start + Duration::from_millis(1300))
        );
    }
}
