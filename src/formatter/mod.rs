//! Decoded text → an [`Article`]: a Chinese item and/or an English item, the file's
//! metadata, and notes on what was dropped or inferred. Pure: no I/O, no clock, no
//! panics; it always returns an article, which may have no item at all.
//!
//! The stages, in order: strip HTML, split into lines, drop junk ([`junk`]), take
//! metadata lines ([`meta`]), remove pinyin readings ([`clean`]), decide each
//! paragraph's language ([`lang`]), then pick titles and summaries ([`cut`]).

pub mod clean;
pub mod cut;
pub mod junk;
pub mod lang;
pub mod meta;

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use self::cut::Script;
use self::lang::{LangTag, ParagraphLang};
use self::meta::Meta;
use crate::decode;

/// What the formatter made of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Article {
    /// An explicit full date from the file's metadata; never from prose.
    #[serde(serialize_with = "iso_date")]
    pub date: Option<NaiveDate>,
    /// The source (newspaper, site, periodical issue) named in the metadata.
    pub source: Option<String>,
    /// Keywords from a keywords line; feeds publish them as categories.
    pub keywords: Vec<String>,
    pub zh: Option<Item>,
    pub en: Option<Item>,
    /// What was dropped, removed or inferred, for `inspect` and the logs.
    pub notes: Vec<String>,
}

/// One language's item of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub lang: LangTag,
    pub title: String,
    /// True when the title came from a title line, false when derived from the text.
    pub title_explicit: bool,
    /// Plain text, at most [`cut::SUMMARY_CHARS_ZH`] or [`cut::SUMMARY_CHARS_EN`] characters.
    pub summary: String,
    /// Non-empty paragraphs, in source order.
    pub paragraphs: Vec<String>,
}

/// Writes a date as `YYYY-MM-DD`, or null.
fn iso_date<S: Serializer>(date: &Option<NaiveDate>, serializer: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => serializer.collect_str(&date.format("%Y-%m-%d")),
        None => serializer.serialize_none(),
    }
}

impl Article {
    /// True when neither language yielded any text.
    pub fn is_empty(&self) -> bool {
        self.zh.is_none() && self.en.is_none()
    }

    /// Checks what every later stage relies on: each item has a title, a summary and
    /// paragraphs, no paragraph is empty or holds a line break, every paragraph is in
    /// its item's language, and no text holds a character XML forbids. The property
    /// tests and the fuzz target call this; a failure is a formatter bug.
    pub fn check(&self) -> Result<(), String> {
        for (item, expected) in [
            (&self.zh, ParagraphLang::Chinese),
            (&self.en, ParagraphLang::English),
        ] {
            if let Some(item) = item {
                item.check(expected)?;
            }
        }
        let metadata = self.keywords.iter().chain(&self.source).chain(&self.notes);
        match metadata
            .into_iter()
            .find(|text| text.contains(decode::is_unwanted_char))
        {
            Some(text) => Err(format!("forbidden character in metadata {text:?}")),
            None => Ok(()),
        }
    }
}

impl Item {
    fn check(&self, expected: ParagraphLang) -> Result<(), String> {
        if self.title.trim().is_empty() || self.summary.trim().is_empty() {
            return Err(format!("empty title or summary in {:?}", self.lang));
        }
        if self.paragraphs.is_empty() {
            return Err(format!("no paragraphs in {:?}", self.lang));
        }
        for text in self.paragraphs.iter().chain([&self.title, &self.summary]) {
            if text.contains(decode::is_unwanted_char) || text.contains('\n') {
                return Err(format!("forbidden character or line break in {text:?}"));
            }
        }
        for paragraph in &self.paragraphs {
            if paragraph.trim().is_empty() || lang::paragraph_lang(paragraph) != expected {
                return Err(format!(
                    "empty or {expected:?}-less paragraph {paragraph:?}"
                ));
            }
        }
        Ok(())
    }
}

/// The longest line taken as a title line; longer unpunctuated lines are paragraphs.
const MAX_TITLE_LINE_CHARS_ZH: usize = 48;
const MAX_TITLE_LINE_CHARS_EN: usize = 160;

/// Text gathered for one language while reading the lines.
#[derive(Default)]
struct Collected {
    /// An explicit title line, and its line number.
    title: Option<(String, usize)>,
    paragraphs: Vec<String>,
}

/// Formats decoded article text. Never fails; see the module documentation.
pub fn format(text: &str) -> Article {
    let mut notes = Vec::new();
    let (text, html) = clean::strip_html(text);
    if html.n_tags > 0 || html.n_entities > 0 {
        notes.push(format!(
            "removed {} HTML tags and decoded {} character references",
            html.n_tags, html.n_entities
        ));
    }
    let mut reader = Reader::default();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    while let Some((number, raw)) = lines.next() {
        let line = clean::tidy_line(raw);
        if line.is_empty() {
            continue;
        }
        match junk::classify(&line) {
            Some(rule) if rule.action == junk::Action::DropRest => {
                let n_dropped = 1 + lines.filter(|(_, rest)| !rest.trim().is_empty()).count();
                reader.notes.push(format!(
                    "dropped {n_dropped} lines from line {number} on ({} `{}`)",
                    rule.kind, rule.keyword
                ));
                break;
            }
            Some(rule) => {
                let note = format!("dropped line {number} ({}): {line}", rule.kind);
                reader.notes.push(note);
            }
            None => reader.read_line(&line, number),
        }
    }
    notes.append(&mut reader.notes);
    reader.finish(notes)
}

/// The state of one pass over an article's lines.
#[derive(Default)]
struct Reader {
    date: Option<NaiveDate>,
    source: Option<String>,
    keywords_raw: Option<String>,
    zh: Collected,
    en: Collected,
    /// Title lines are only found before the first paragraph.
    seen_paragraph: bool,
    n_pinyin: usize,
    notes: Vec<String>,
}

impl Reader {
    fn read_line(&mut self, line: &str, number: usize) {
        if let Some(meta) = meta::parse_line(line) {
            self.take_meta(meta, number);
            return;
        }
        let (line, n_pinyin) = clean::strip_pinyin(line);
        self.n_pinyin += n_pinyin;
        let (collected, max_title_chars) = match lang::paragraph_lang(&line) {
            ParagraphLang::Chinese => (&mut self.zh, MAX_TITLE_LINE_CHARS_ZH),
            ParagraphLang::English => (&mut self.en, MAX_TITLE_LINE_CHARS_EN),
            ParagraphLang::Neither => {
                self.notes.push(format!(
                    "dropped line {number}, which has no Chinese or English: {line}"
                ));
                return;
            }
        };
        let title_like = !clean::ends_like_prose(&line) && line.chars().count() <= max_title_chars;
        if !self.seen_paragraph && title_like && collected.title.is_none() {
            collected.title = Some((line.into_owned(), number));
        } else {
            collected.paragraphs.push(line.into_owned());
            self.seen_paragraph = true;
        }
    }

    fn take_meta(&mut self, meta: Meta, number: usize) {
        let (date, source) = match meta {
            Meta::Date { date, source } => (Some(date), source),
            Meta::SourceLine { source, date, rest } => {
                if !rest.is_empty() {
                    self.notes.push(format!(
                        "dropped site text after the source line {number}: {rest}"
                    ));
                }
                (date, Some(source))
            }
            Meta::Publication(publication) => (None, Some(publication)),
            Meta::Source(source) => (None, Some(source)),
            Meta::Keywords(raw) => {
                if self.keywords_raw.is_none() {
                    self.notes.push(format!("keywords from line {number}"));
                    self.keywords_raw = Some(raw);
                }
                return;
            }
        };
        if let Some(date) = date.filter(|_| self.date.is_none()) {
            self.notes.push(format!("date {date} from line {number}"));
            self.date = Some(date);
        }
        if let Some(source) = source.filter(|_| self.source.is_none()) {
            self.notes.push(format!("source from line {number}"));
            self.source = Some(source);
        }
    }

    fn finish(mut self, mut notes: Vec<String>) -> Article {
        if self.n_pinyin > 0 {
            notes.push(format!("removed {} pinyin readings", self.n_pinyin));
        }
        let zh = finish_item(std::mem::take(&mut self.zh), Script::Chinese, &mut notes);
        let en = finish_item(std::mem::take(&mut self.en), Script::English, &mut notes);
        let keywords = match self.keywords_raw {
            Some(raw) => {
                let text: String = zh
                    .iter()
                    .flat_map(|item| &item.paragraphs)
                    .map(String::as_str)
                    .collect();
                meta::split_keywords(&raw, &text)
            }
            None => Vec::new(),
        };
        Article {
            date: self.date,
            source: self.source,
            keywords,
            zh,
            en,
            notes,
        }
    }
}

/// An item with fewer letters of its script than this (title and text together) is
/// dropped: a stray letter (say, junk bytes decoded as `Ā`) is not an article.
const MIN_LETTERS: usize = 2;

/// Builds one language's item: a title line with no paragraphs after it becomes the
/// only paragraph; a missing title is derived from the first paragraph.
fn finish_item(mut collected: Collected, script: Script, notes: &mut Vec<String>) -> Option<Item> {
    if collected.title.is_none() && collected.paragraphs.is_empty() {
        return None;
    }
    let texts = collected.title.iter().map(|(title, _)| title);
    let n_letters: usize = texts
        .chain(&collected.paragraphs)
        .map(|text| lang::count_letters(text, script))
        .sum();
    if n_letters < MIN_LETTERS {
        let language = match script {
            Script::Chinese => "Chinese",
            Script::English => "English",
        };
        notes.push(format!(
            "dropped the {language} text: {n_letters} letter, too little for an article"
        ));
        return None;
    }
    if collected.paragraphs.is_empty() {
        let (title, _) = collected.title.take()?;
        collected.paragraphs.push(title);
    }
    let (derived_title, summary) = cut::title_and_summary(&collected.paragraphs[0], script);
    let (title, title_explicit) = match collected.title {
        Some((title, number)) => {
            notes.push(format!("title from line {number}"));
            (title, true)
        }
        None => (derived_title, false),
    };
    let lang = match script {
        Script::English => LangTag::En,
        Script::Chinese => {
            let texts = std::iter::once(&title).chain(&collected.paragraphs);
            let (tag, undecided) = lang::chinese_script(texts.map(String::as_str));
            if undecided {
                notes
                    .push("no character tells Simplified from Traditional; assumed zh-Hans".into());
            }
            tag
        }
    };
    Some(Item {
        lang,
        title,
        title_explicit,
        summary,
        paragraphs: collected.paragraphs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article_with_zh(paragraphs: &[&str]) -> Article {
        Article {
            date: None,
            source: None,
            keywords: Vec::new(),
            zh: Some(Item {
                lang: LangTag::ZhHans,
                title: "标题".into(),
                title_explicit: false,
                summary: "摘要".into(),
                paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
            }),
            en: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn check_catches_what_later_stages_cannot_take() {
        assert_eq!(article_with_zh(&["会议召开。"]).check(), Ok(()));
        assert!(article_with_zh(&[]).check().is_err());
        assert!(article_with_zh(&[" "]).check().is_err());
        assert!(article_with_zh(&["会议\u{1}召开。"]).check().is_err());
        assert!(article_with_zh(&["会议\n召开。"]).check().is_err());
        assert!(article_with_zh(&["The meeting opened."]).check().is_err());
        let mut article = article_with_zh(&["会议召开。"]);
        article.keywords.push("外\u{FFFE}办".into());
        assert!(article.check().is_err());
    }

    #[test]
    fn formats_the_seed_shapes() {
        let article = format("APP下载\n\n标题行\n\n2020-08-04\n\n会议召开。\n\nThe meeting opened.\n猜你喜欢\nJunk title");
        assert_eq!(article.check(), Ok(()));
        assert_eq!(
            article.zh.as_ref().map(|item| item.title.as_str()),
            Some("标题行")
        );
        assert_eq!(
            article.en.as_ref().map(|item| item.paragraphs.len()),
            Some(1)
        );
        assert_eq!(article.date, NaiveDate::from_ymd_opt(2020, 8, 4));
    }

    #[test]
    fn a_single_letter_is_not_an_item() {
        // Junk bytes behind a UTF-16 byte-order mark decode to one Latin letter.
        let junk = format("\u{100}");
        assert!(junk.is_empty(), "{junk:?}");
        assert!(junk.notes.iter().any(|note| note.contains("English")));
        assert!(format("\u{4E2D}").is_empty());
        // Two letters are the least an item has; the other language is unaffected.
        assert!(format("Hi").en.is_some());
        assert!(format("\u{4E2D}\u{6587}").zh.is_some());
        let mixed = format("\u{4E2D}\u{6587}\n\nx");
        assert!(mixed.zh.is_some() && mixed.en.is_none(), "{mixed:?}");
    }
}
