//! Cutting text to a length for derived titles and summaries: at a sentence end if one
//! fits, else at a clause boundary outside quotes and brackets, else at a word
//! boundary (English) or a character (Chinese), with `…` whenever text was cut.

/// How a cut text is measured and where it may be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Chinese,
    English,
}

/// Longest derived title, in characters.
pub const TITLE_CHARS_ZH: usize = 30;
pub const TITLE_CHARS_EN: usize = 90;
/// Longest summary, in characters.
pub const SUMMARY_CHARS_ZH: usize = 120;
pub const SUMMARY_CHARS_EN: usize = 300;

const ELLIPSIS: char = '…';

/// The derived title and the summary of an item whose first paragraph is `paragraph`,
/// at the lengths for its script. One scan of the paragraph serves both.
pub fn title_and_summary(paragraph: &str, script: Script) -> (String, String) {
    let (title_chars, summary_chars) = match script {
        Script::Chinese => (TITLE_CHARS_ZH, SUMMARY_CHARS_ZH),
        Script::English => (TITLE_CHARS_EN, SUMMARY_CHARS_EN),
    };
    let found = boundaries(paragraph, script, summary_chars.max(title_chars));
    (
        title(paragraph, &found, script, title_chars),
        summary(paragraph, &found, script, summary_chars),
    )
}

/// A title from the first sentence of a paragraph: the sentence without its final
/// stop when it fits in `max_chars`, else its longest clause-bounded prefix that fits.
/// `found` holds the paragraph's boundaries up to at least `max_chars`.
fn title(paragraph: &str, found: &[Boundary], script: Script, max_chars: usize) -> String {
    let first_stop = found
        .iter()
        .take_while(|b| b.n_chars <= max_chars)
        .find(|b| b.kind == Kind::Sentence);
    let sentence = first_stop.map_or(paragraph, |stop| &paragraph[..stop.end]);
    let sentence =
        sentence.trim_end_matches(|c| is_sentence_mark(c) || matches!(c, ';' | '\u{FF1B}'));
    let sentence = if sentence.trim().is_empty() {
        paragraph
    } else {
        sentence
    };
    if sentence.chars().count() <= max_chars {
        return sentence.trim().to_string();
    }
    cut_at_boundary(sentence, found, script, max_chars, false)
}

/// A summary of a paragraph: the paragraph when it fits, else whole sentences that fit,
/// else a clause- or word-bounded prefix. `found` as for [`title`].
fn summary(paragraph: &str, found: &[Boundary], script: Script, max_chars: usize) -> String {
    if paragraph.chars().count() <= max_chars {
        return paragraph.to_string();
    }
    cut_at_boundary(paragraph, found, script, max_chars, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Word,
    Clause,
    Sentence,
}

#[derive(Debug, Clone, Copy)]
struct Boundary {
    /// Byte offset just after the mark; the kept text is `text[..end]`.
    end: usize,
    /// Characters in `text[..end]`.
    n_chars: usize,
    kind: Kind,
}

/// Cuts `text` (longer than `max_chars`) at the best boundary that fits. A sentence or
/// clause boundary is used when it keeps at least 40% of the room; otherwise a word
/// boundary (English) or the character limit (Chinese) keeps more of the meaning.
fn cut_at_boundary(
    text: &str,
    found: &[Boundary],
    script: Script,
    max_chars: usize,
    keep_stop: bool,
) -> String {
    let room = max_chars.saturating_sub(1).max(1);
    let fitting = &found[..found.partition_point(|b| b.n_chars <= room && b.end <= text.len())];
    let least = room * 2 / 5;
    let best_of = |kind: Kind| {
        fitting
            .iter()
            .rev()
            .find(|b| b.kind >= kind && b.n_chars >= least)
    };
    if keep_stop {
        if let Some(sentence) = best_of(Kind::Sentence) {
            return text[..sentence.end].trim_end().to_string();
        }
    }
    let end = match (best_of(Kind::Clause), script) {
        (Some(clause), _) => clause.end,
        (None, Script::English) => {
            best_of(Kind::Word).map_or_else(|| char_prefix_end(text, room), |word| word.end)
        }
        (None, Script::Chinese) => char_prefix_end(text, room),
    };
    let kept = text[..end].trim_end_matches(|c: char| c.is_whitespace() || is_clause_mark(c));
    let kept = if kept.is_empty() { &text[..end] } else { kept };
    let mut cut = kept.to_string();
    cut.push(ELLIPSIS);
    cut
}

/// Byte offset after the first `n_chars` characters of `text`.
fn char_prefix_end(text: &str, n_chars: usize) -> usize {
    text.char_indices()
        .nth(n_chars)
        .map_or(text.len(), |(i, _)| i)
}

/// Clause marks, ASCII and full-width (U+FF0C `，`, U+FF1B `；`, U+FF1A `：`).
fn is_clause_mark(c: char) -> bool {
    matches!(
        c,
        ',' | '\u{FF0C}' | '、' | ';' | '\u{FF1B}' | ':' | '\u{FF1A}' | '—' | '–'
    )
}

/// Sentence marks, ASCII and full-width (U+FF01 `！`, U+FF1F `？`).
fn is_sentence_mark(c: char) -> bool {
    matches!(c, '。' | '.' | '!' | '\u{FF01}' | '?' | '\u{FF1F}' | '…')
}

/// Abbreviations after which a period does not end an English sentence.
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "No", "Gen", "Gov", "Sen", "Rep", "Inc", "Ltd", "Co",
    "Corp", "vs", "etc", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
    "Nov", "Dec", "U.S", "U.K", "e.g", "i.e",
];

/// Every place in the first `max_chars` characters of `text` where it may be cut, in
/// order. Brackets and quotes nest: a mark inside `《…》`, `“…”` or `(…)` is not a
/// boundary. English sentence and clause marks count only before white space; spaces
/// are word boundaries.
fn boundaries(text: &str, script: Script, max_chars: usize) -> Vec<Boundary> {
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut straight_quote_open = false;
    let mut chars = text.char_indices().peekable();
    let mut n_chars = 0;
    while let Some((i, c)) = chars.next() {
        n_chars += 1;
        if n_chars > max_chars {
            break;
        }
        let end = i + c.len_utf8();
        let next = chars.peek().map(|&(_, next)| next);
        match c {
            '《' | '“' | '‘' | '(' | '\u{FF08}' | '「' | '『' | '[' | '【' => depth += 1,
            '》' | '”' | '’' | ')' | '\u{FF09}' | '」' | '』' | ']' | '】' => {
                depth = depth.saturating_sub(1)
            }
            '"' => {
                straight_quote_open = !straight_quote_open;
            }
            _ => {}
        }
        let nested = depth > 0 || straight_quote_open;
        let before_space = next.is_none_or(char::is_whitespace);
        let kind = if c.is_whitespace() {
            (script == Script::English).then_some(Kind::Word)
        } else if nested {
            None
        } else if is_sentence_mark(c) {
            let ascii = c.is_ascii();
            let ends = !ascii || (before_space && !(c == '.' && is_abbreviation(&text[..i])));
            ends.then_some(Kind::Sentence)
        } else if is_clause_mark(c) {
            (!c.is_ascii() || before_space || script == Script::Chinese).then_some(Kind::Clause)
        } else {
            None
        };
        if let Some(kind) = kind {
            found.push(Boundary { end, n_chars, kind });
        }
    }
    found
}

fn is_abbreviation(before_period: &str) -> bool {
    let word = before_period
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or(before_period);
    ABBREVIATIONS.contains(&word) || (word.len() == 1 && word.chars().all(char::is_uppercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title_from(paragraph: &str, script: Script, max_chars: usize) -> String {
        title(
            paragraph,
            &boundaries(paragraph, script, max_chars),
            script,
            max_chars,
        )
    }

    fn summary_from(paragraph: &str, script: Script, max_chars: usize) -> String {
        summary(
            paragraph,
            &boundaries(paragraph, script, max_chars),
            script,
            max_chars,
        )
    }

    #[test]
    fn short_sentence_is_the_title() {
        assert_eq!(
            title_from(
                "会议召开。会议要求,全办上下要切实增强。",
                Script::Chinese,
                30
            ),
            "会议召开"
        );
    }

    #[test]
    fn chinese_title_cut_at_clause_outside_brackets() {
        let paragraph = "為深入學習《習近平談治國理政》第三卷,推動外事干部學懂弄通做實習近平新時代中國特色社會主義思想,深學篤用。";
        assert_eq!(
            title_from(paragraph, Script::Chinese, 30),
            "為深入學習《習近平談治國理政》第三卷…"
        );
        let quoted =
            "市政府外辦組織開展“修練內功,夯實創新發展能力”學習培訓活動和陸續推出的系列講座活動";
        let title = title_from(quoted, Script::Chinese, 30);
        assert_eq!(title.chars().count(), 30);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn english_title_cut_at_word_boundary() {
        let paragraph = "On June 1st the Party Group of the Foreign Affairs Office of Chongqing Municipal Government (FAOCMG) held an enlarged meeting, and more.";
        let title = title_from(paragraph, Script::English, 90);
        assert_eq!(
            title,
            "On June 1st the Party Group of the Foreign Affairs Office of Chongqing Municipal…"
        );
        assert!(title.chars().count() <= 90);
    }

    #[test]
    fn abbreviations_do_not_end_sentences() {
        assert_eq!(
            title_from(
                "Mr. Zhang met Dr. Li in the U.S. on Monday. Then more.",
                Script::English,
                90
            ),
            "Mr. Zhang met Dr. Li in the U.S. on Monday"
        );
    }

    #[test]
    fn summary_keeps_whole_sentences() {
        let paragraph = "First sentence here. Second one is a little longer than that. Third.";
        assert_eq!(
            summary_from(paragraph, Script::English, 40),
            "First sentence here."
        );
        assert_eq!(summary_from("短。", Script::Chinese, 40), "短。");
    }

    #[test]
    fn no_boundary_at_all() {
        let run = "字".repeat(50);
        assert_eq!(title_from(&run, Script::Chinese, 30).chars().count(), 30);
        let word = "x".repeat(200);
        assert_eq!(title_from(&word, Script::English, 90).chars().count(), 90);
    }
}
