//! Which language a paragraph is in (by its share of Han characters) and which Chinese
//! script a text is written in (Simplified or Traditional, by zhconv's tables).

use serde::Serialize;

use super::cut::Script;
use crate::scan::count_triples;

/// The language of one paragraph, decided from its characters alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParagraphLang {
    Chinese,
    English,
    /// No Han characters and no Latin letters: digits, punctuation or another script.
    Neither,
}

/// The language tag of an item, as it appears in feeds (`xml:lang`, `hreflang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LangTag {
    #[serde(rename = "zh-Hans")]
    ZhHans,
    #[serde(rename = "zh-Hant")]
    ZhHant,
    #[serde(rename = "en")]
    En,
}

impl LangTag {
    pub fn as_str(self) -> &'static str {
        match self {
            LangTag::ZhHans => "zh-Hans",
            LangTag::ZhHant => "zh-Hant",
            LangTag::En => "en",
        }
    }
}

/// True for a CJK ideograph (the unified blocks, their extensions and compatibility
/// ideographs, and the ideographic zero).
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3007}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{323AF}')
}

/// True for a letter of the Latin script (ASCII, Latin-1 and the Latin Extended blocks,
/// which hold the accented letters of pinyin and European names).
pub fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || (matches!(c, '\u{C0}'..='\u{24F}') && c.is_alphabetic())
}

/// The letters of one script in a text: Han characters for Chinese, Latin letters for
/// English.
pub fn count_letters(text: &str, script: Script) -> usize {
    let (n_han, n_latin) = count_han_and_latin(text);
    match script {
        Script::Chinese => n_han,
        Script::English => n_latin,
    }
}

/// Decides a paragraph's language. A Han character carries about as much as a short
/// English word, so a paragraph is Chinese when its Han characters are at least a third
/// of its Latin letters: `Zhang Yongwu (章勇武) said …` stays English, and a Chinese
/// sentence quoting `COVID-19` or `(FAOCMG)` stays Chinese.
pub fn paragraph_lang(text: &str) -> ParagraphLang {
    let (n_han, n_latin) = count_han_and_latin(text);
    if n_han > 0 && n_han * 3 >= n_latin {
        ParagraphLang::Chinese
    } else if n_latin > 0 {
        ParagraphLang::English
    } else {
        ParagraphLang::Neither
    }
}

/// Counts Han characters ([`is_han`]) and Latin letters ([`is_latin_letter`]).
///
/// Counted on bytes for speed, in passes the compiler vectorises: ASCII letters are one
/// byte; Han characters in the BMP are three bytes led by E4–E9 (U+4000–U+9FFF, all
/// Han but for the 64 Yijing hexagram symbols), E3 90–BF (U+3400–U+3FFF), E3 80 87
/// (U+3007) or EF A4–AB (U+F900–U+FAFF). Accented Latin letters (lead bytes C3–C9) and
/// characters beyond the BMP (F0–F4) are rare and counted char by char.
fn count_han_and_latin(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut n_latin = count_triples(bytes, |[byte, _, _]| (byte | 0x20).wrapping_sub(b'a') < 26);
    let mut n_han = count_triples(bytes, |[byte, next, after]| {
        (0xE4..=0xE9).contains(&byte)
            || (byte == 0xE3 && (next >= 0x90 || (next == 0x80 && after == 0x87)))
            || (byte == 0xEF && (0xA4..=0xAB).contains(&next))
    });
    let n_rare = count_triples(
        bytes,
        |[byte, _, _]| matches!(byte, 0xC3..=0xC9 | 0xF0..=0xF4),
    );
    if n_rare > 0 {
        for c in text
            .chars()
            .filter(|&c| ('\u{C0}'..='\u{24F}').contains(&c) || c > '\u{FFFF}')
        {
            n_han += usize::from(is_han(c));
            n_latin += usize::from(is_latin_letter(c));
        }
    }
    (n_han, n_latin)
}

/// How many bytes of Chinese text are enough to tell the script: the detector's cost
/// grows with the text, its answer does not.
const SCRIPT_SAMPLE_BYTES: usize = 360;

/// The script of Chinese text, judged on a sample of its paragraphs. Text that uses only
/// characters common to both scripts is reported as Simplified, with `undecided` set.
pub fn chinese_script<'a>(paragraphs: impl IntoIterator<Item = &'a str>) -> (LangTag, bool) {
    let mut sample = String::with_capacity(SCRIPT_SAMPLE_BYTES + 64);
    for paragraph in paragraphs {
        if sample.len() >= SCRIPT_SAMPLE_BYTES {
            break;
        }
        let room = SCRIPT_SAMPLE_BYTES - sample.len();
        sample.push_str(prefix_within(paragraph, room));
        sample.push('\n');
    }
    let hans_confidence = zhconv::is_hans_confidence(&sample);
    if hans_confidence.is_nan() || hans_confidence == 0.5 {
        (LangTag::ZhHans, true)
    } else if hans_confidence > 0.5 {
        (LangTag::ZhHans, false)
    } else {
        (LangTag::ZhHant, false)
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a char boundary.
fn prefix_within(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_with_a_chinese_name_stays_english() {
        let text = "Zhang Yongwu (章勇武), director general, presided over the meeting.";
        assert_eq!(paragraph_lang(text), ParagraphLang::English);
    }

    #[test]
    fn chinese_with_acronyms_stays_chinese() {
        let text = "重庆市政府外办(FAOCMG)召开COVID-19防控会议。";
        assert_eq!(paragraph_lang(text), ParagraphLang::Chinese);
        assert_eq!(paragraph_lang("2020 — 12.5%"), ParagraphLang::Neither);
        assert_eq!(paragraph_lang("Привет мир"), ParagraphLang::Neither);
    }

    #[test]
    fn byte_counting_agrees_with_the_definitions() {
        let hexagrams = '\u{4DC0}'..='\u{4DFF}';
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if hexagrams.contains(&c) {
                continue;
            }
            let expected = (usize::from(is_han(c)), usize::from(is_latin_letter(c)));
            assert_eq!(
                count_han_and_latin(&c.to_string()),
                expected,
                "{c:?} U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn scripts() {
        assert_eq!(
            chinese_script(["市政府外辦黨組召開會議"]).0,
            LangTag::ZhHant
        );
        // One Traditional character inside Simplified text does not flip the script.
        assert_eq!(
            chinese_script(["市政府外辦党组召开扩大会议,专题传达学习讲话精神"]),
            (LangTag::ZhHans, false)
        );
        assert_eq!(chinese_script(["中文"]), (LangTag::ZhHans, true));
    }

    #[test]
    fn prefix_respects_char_boundaries() {
        assert_eq!(prefix_within("外事", 4), "外");
        assert_eq!(prefix_within("ab", 4), "ab");
    }
}
