//! Text-level repairs of scraper damage: HTML tags and entities, pinyin readings after
//! Han characters, and runs of white space. Words themselves are never changed.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::{memchr2, memchr_iter};
use regex::{Captures, Regex};

use crate::decode::is_unwanted_char;
use crate::scan::count_triples;

/// Tags whose start or end breaks a line, so `<p>a</p><p>b</p>` keeps two paragraphs.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Tags whose content is never text.
const HIDDEN_TAGS: &[&str] = &["script", "style", "noscript", "template", "head", "title"];

/// What [`strip_html`] did, for the notes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HtmlReport {
    pub n_tags: usize,
    pub n_entities: usize,
}

/// Removes HTML tags (dropping the content of `<script>`, `<style>` and the like, and
/// breaking lines at block tags) and decodes character references. A `<` that does not
/// open a tag, as in `a < b`, is text and stays.
pub fn strip_html(text: &str) -> (Cow<'_, str>, HtmlReport) {
    let mut report = HtmlReport::default();
    let untagged = if text.contains('<') {
        strip_tags(text, &mut report)
    } else {
        Cow::Borrowed(text)
    };
    if !untagged.contains('&') {
        return (untagged, report);
    }
    let decoded = html_escape::decode_html_entities(&untagged);
    if decoded == untagged {
        return (untagged, report);
    }
    // Each decoded reference loses its `;` (`&amp;` keeps its `&`, so count those).
    report.n_entities = untagged.matches(';').count() - decoded.matches(';').count();
    // A reference such as `&#1;` can name a character that XML forbids.
    let decoded: String = decoded.chars().filter(|&c| !is_unwanted_char(c)).collect();
    (Cow::Owned(decoded), report)
}

fn strip_tags<'a>(text: &'a str, report: &mut HtmlReport) -> Cow<'a, str> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        match parse_tag(candidate) {
            Some(tag) => {
                report.n_tags += 1;
                if tag.breaks_line {
                    out.push('\n');
                }
                rest = &candidate[tag.length..];
                if let Some(hidden) = tag.hides_until {
                    rest = skip_past_closing(rest, hidden);
                }
            }
            None => {
                out.push('<');
                rest = &candidate[1..];
            }
        }
    }
    if report.n_tags == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

struct Tag {
    /// Bytes from `<` to `>` inclusive.
    length: usize,
    breaks_line: bool,
    /// For an opening hidden tag, the name whose closing tag ends the hidden content.
    hides_until: Option<&'static str>,
}

/// Parses a tag, comment or declaration at the start of `text` (which starts with `<`).
fn parse_tag(text: &str) -> Option<Tag> {
    const MAX_TAG_BYTES: usize = 2048;
    if let Some(comment) = text.strip_prefix("<!--") {
        let end = comment.find("-->")?;
        return Some(Tag {
            length: 4 + end + 3,
            breaks_line: false,
            hides_until: None,
        });
    }
    let after = text[1..].chars().next()?;
    if !(after.is_ascii_alphabetic() || after == '/' || after == '!' || after == '?') {
        return None;
    }
    // Searched as bytes: a window cut at MAX_TAG_BYTES may end inside a character, and
    // `<` and `>` are ASCII, so the index found is a character boundary.
    let window = &text.as_bytes()[..text.len().min(MAX_TAG_BYTES)];
    let end = memchr2(b'<', b'>', &window[1..])? + 1;
    if window[end] != b'>' {
        return None;
    }
    let inner = &text[1..end];
    let closing = inner.starts_with('/');
    let name: String = inner
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if name.is_empty() && !(after == '!' || after == '?') {
        return None;
    }
    let hides_until = if closing || inner.ends_with('/') {
        None
    } else {
        HIDDEN_TAGS.iter().copied().find(|&hidden| hidden == name)
    };
    Some(Tag {
        length: end + 1,
        breaks_line: BLOCK_TAGS.contains(&name.as_str()),
        hides_until,
    })
}

/// Skips to just after `</name …>` (ASCII case-insensitive), or to the end of the text.
fn skip_past_closing<'a>(text: &'a str, name: &str) -> &'a str {
    let closing = format!("</{name}");
    let lower = text.to_ascii_lowercase();
    match lower.find(&closing) {
        Some(start) => match text[start..].find('>') {
            Some(end) => &text[start + end + 1..],
            None => "",
        },
        None => "",
    }
}

/// A Han character followed by a pinyin reading in ASCII parentheses: `應(yīng)`.
static PINYIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\p{Han})\(([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹ]{1,6})\)")
        .expect("the pinyin pattern is a valid regular expression")
});

/// Toneless syllables a scraper writes for the neutral tone.
const NEUTRAL_SYLLABLES: &[&str] = &["de", "le", "me", "men", "ne", "ma", "ba", "zi", "zhe"];

/// Removes pinyin readings that a scraper put after Han characters (`應(yīng)邀請` →
/// `應邀請`). A reading must carry a tone mark or be a neutral-tone syllable, so real
/// text such as `(FAOCMG)`, `(NPC)` or `(客户端)` stays.
pub fn strip_pinyin(text: &str) -> (Cow<'_, str>, usize) {
    // A reading opens with a lowercase letter: ASCII, or a tone-marked vowel whose
    // UTF-8 lead byte is C3, C4, C5 or C7. Skip the regex when no `(` opens one.
    // The Han character before it is three bytes led by E3–E9 or EF, or four led by F0.
    let bytes = text.as_bytes();
    let may_hold_reading = memchr_iter(b'(', bytes).any(|index| {
        let han_before = (index >= 3 && matches!(bytes[index - 3], 0xE3..=0xE9 | 0xEF))
            || (index >= 4 && bytes[index - 4] == 0xF0);
        han_before
            && matches!(
                bytes.get(index + 1),
                Some(b'a'..=b'z' | 0xC3 | 0xC4 | 0xC5 | 0xC7)
            )
    });
    if !may_hold_reading {
        return (Cow::Borrowed(text), 0);
    }
    let mut n_removed = 0;
    let stripped = PINYIN.replace_all(text, |captures: &Captures| {
        let reading = &captures[2];
        if !reading.is_ascii() || NEUTRAL_SYLLABLES.contains(&reading) {
            n_removed += 1;
            captures[1].to_string()
        } else {
            captures[0].to_string()
        }
    });
    (stripped, n_removed)
}

/// Trims a line (white space includes the ideographic and no-break spaces) and folds
/// each inner run of white space into one space.
pub fn tidy_line(line: &str) -> Cow<'_, str> {
    let trimmed = line.trim();
    if !may_need_folding(trimmed.as_bytes()) {
        return Cow::Borrowed(trimmed);
    }
    let mut previous_was_space = false;
    let already_tidy = trimmed.chars().all(|c| {
        let fine = !c.is_whitespace() || (c == ' ' && !previous_was_space);
        previous_was_space = c.is_whitespace();
        fine
    });
    if already_tidy {
        return Cow::Borrowed(trimmed);
    }
    let mut tidy = String::with_capacity(trimmed.len());
    for word in trimmed.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !tidy.is_empty() {
            tidy.push(' ');
        }
        tidy.push_str(word);
    }
    Cow::Owned(tidy)
}

/// True if the bytes hold a run of spaces or white space other than an ASCII space:
/// tab and line ends, U+0085 and U+00A0 (C2 85, C2 A0), U+1680 (E1 9A 80), U+2000–U+200A
/// (E2 80 80–8A), U+2028, U+2029, U+202F (E2 80 A8, A9, AF), U+205F (E2 81 9F) and
/// U+3000 (E3 80 80). Curly quotes and dashes (E2 80 90–9F) are not white space.
fn may_need_folding(bytes: &[u8]) -> bool {
    let n_found = count_triples(bytes, |[byte, next, after]| {
        (byte == b' ' && next == b' ')
            || matches!(byte, b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
            || (byte == 0xC2 && (next == 0x85 || next == 0xA0))
            || (byte == 0xE1 && next == 0x9A)
            || (byte == 0xE2
                && next == 0x80
                && (after <= 0x8A || matches!(after, 0xA8 | 0xA9 | 0xAF)))
            || (byte == 0xE2 && next == 0x81 && after == 0x9F)
            || (byte == 0xE3 && next == 0x80 && after == 0x80)
    });
    n_found > 0
}

/// True if the text ends a sentence or clause the way a title never does.
pub fn ends_like_prose(text: &str) -> bool {
    // Closing quotes and brackets (ASCII and full-width) may follow the final mark.
    text.trim_end_matches(['"', '\'', '”', '’', '」', '』', ')', '\u{FF09}'])
        .ends_with([
            '。', '.', ',', '\u{FF0C}', ';', '\u{FF1B}', ':', '\u{FF1A}', '、',
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinyin_readings_go_real_parentheses_stay() {
        let (text, n) = strip_pinyin("應(yīng)市委外辦邀請(qǐng),重慶市政府外办(FAOCMG)(客户端)");
        assert_eq!(text, "應市委外辦邀請,重慶市政府外办(FAOCMG)(客户端)");
        assert_eq!(n, 2);
        let (text, n) = strip_pinyin("国家(nation) 目的(de)");
        assert_eq!(text, "国家(nation) 目的");
        assert_eq!(n, 1);
    }

    #[test]
    fn html_tags_dropped_script_hidden_entities_decoded() {
        let html = "<p>外事&amp;交流</p><script>alert('x')</script><p>a &lt; b &#x4E2D;</p>";
        let (text, report) = strip_html(html);
        assert_eq!(text, "\n外事&交流\n\na < b 中\n");
        // The script element, content and all, counts as one tag.
        assert_eq!(report.n_tags, 5);
        assert_eq!(report.n_entities, 3);
    }

    #[test]
    fn lone_angle_brackets_are_text() {
        let (text, report) = strip_html("if a < b and c > d then <3");
        assert_eq!(text, "if a < b and c > d then <3");
        assert_eq!(report, HtmlReport::default());
        // A reference to a forbidden character is not decoded: it stays harmless text.
        let (text, _) = strip_html("x <b>bold</b> y <!-- note --> z &#1; &#x7;");
        assert_eq!(text, "x bold y  z &#1; &#x7;");
    }

    #[test]
    fn regression_tag_window_cut_inside_a_character() {
        // Found by the fuzzer: a `<` followed by 2 KiB without `>` cut the search
        // window in the middle of a Chinese character.
        for prefix in ["", "a", "ab"] {
            let text = format!("<a{prefix}{}", "中".repeat(1000));
            let (stripped, report) = strip_html(&text);
            assert_eq!(stripped, text);
            assert_eq!(report.n_tags, 0);
        }
    }

    #[test]
    fn tidy_folds_spaces_keeps_words() {
        assert_eq!(
            tidy_line("\u{3000}\u{3000}开拓创新 不负韶华  "),
            "开拓创新 不负韶华"
        );
        assert_eq!(tidy_line("a \t b\u{A0}c"), "a b c");
        assert!(matches!(tidy_line("plain text"), Cow::Borrowed(_)));
        assert_eq!(tidy_line("a\u{2003}b\u{202F}c\u{85}d"), "a b c d");
        assert!(matches!(tidy_line("会议“召开”——完毕。"), Cow::Borrowed(_)));
        for space in [
            '\u{2000}', '\u{200A}', '\u{2028}', '\u{202F}', '\u{205F}', '\u{3000}', '\u{1680}',
        ] {
            assert_eq!(
                tidy_line(&format!("a{space}b")),
                "a b",
                "U+{:04X}",
                space as u32
            );
        }
    }

    #[test]
    fn prose_endings() {
        assert!(ends_like_prose("会议召开。"));
        assert!(ends_like_prose("He said \"yes.\""));
        assert!(!ends_like_prose("市政府外办党组召开会议"));
        assert!(!ends_like_prose("Is it over?"));
    }
}
