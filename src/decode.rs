//! Bytes → clean text: byte-order marks, UTF-16, GB18030/GBK, Big5, line ends and
//! XML-forbidden characters; or a [`Rejection`] saying why the bytes are not an article.
//!
//! This module does no I/O and knows nothing of paragraphs or languages.

use std::borrow::Cow;

use encoding_rs::{Encoding, BIG5, GB18030, GBK, UTF_8, WINDOWS_1252};

use crate::scan::count_triples;

/// The default largest article file we accept, in bytes (10 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Why a file is not turned into items. The file itself is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("file looks binary ({0})")]
    Binary(String),
    #[error("file cannot be decoded: {0}")]
    Undecodable(String),
    #[error("file holds no Chinese or English text after cleaning")]
    NoText,
    #[error("not a regular file")]
    NotRegularFile,
}

/// Text decoded from an article file, ready for the formatter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text with `\n` line ends and no XML-forbidden characters.
    pub text: String,
    /// The encoding the bytes were read in, e.g. `UTF-8`, `GBK`, `Big5`.
    pub encoding: &'static str,
    /// What decoding had to do that an operator may want to know.
    pub notes: Vec<String>,
}

/// Decodes one file's bytes, detecting the encoding from a byte-order mark or the bytes.
pub fn decode(bytes: &[u8], max_bytes: u64) -> Result<Decoded, Rejection> {
    let size = bytes.len() as u64;
    if size > max_bytes {
        return Err(Rejection::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    let mut notes = Vec::new();
    let (encoding, decoded, had_errors) = match Encoding::for_bom(bytes) {
        Some((encoding, bom_length)) => {
            let (decoded, had_errors) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
            (encoding, decoded, had_errors)
        }
        None => {
            if let Some(offset) = bytes.iter().position(|&byte| byte == 0) {
                return Err(Rejection::Binary(format!(
                    "NUL byte at offset {offset}; UTF-16 needs a byte-order mark"
                )));
            }
            match std::str::from_utf8(bytes) {
                Ok(text) => (UTF_8, Cow::Borrowed(text), false),
                Err(_) => {
                    let encoding = guess_legacy(bytes, &mut notes);
                    let (decoded, had_errors) = encoding.decode_without_bom_handling(bytes);
                    (encoding, decoded, had_errors)
                }
            }
        }
    };
    if decoded.trim().is_empty() {
        return Err(Rejection::Empty);
    }
    if encoding != UTF_8 {
        notes.push(format!("decoded as {}", encoding.name()));
    }
    if had_errors {
        check_malformed(&decoded, encoding, &mut notes)?;
    }
    let text = normalize(decoded, &mut notes)?;
    if text.trim().is_empty() {
        return Err(Rejection::Empty);
    }
    Ok(Decoded {
        text,
        encoding: encoding.name(),
        notes,
    })
}

/// Picks the legacy encoding of bytes that are not UTF-8 and have no byte-order mark,
/// among those Chinese and English text comes in.
fn guess_legacy(bytes: &[u8], notes: &mut Vec<String>) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Allow);
    if guess == GBK || guess == GB18030 {
        // GB18030 is a superset of GBK that decodes every GBK file the same way.
        return GB18030;
    }
    if guess == BIG5 {
        return guess;
    }
    // windows-1252 decodes any byte at all; take it only for English text with a few
    // curly quotes or accents, never for bytes that are mostly outside ASCII.
    let n_ascii = bytes.iter().filter(|byte| byte.is_ascii()).count();
    if guess == WINDOWS_1252 && n_ascii * 10 >= bytes.len() * 9 {
        return guess;
    }
    // Short or damaged texts fool the detector into Japanese or Korean guesses; our
    // input is Chinese or English, so take the Chinese encoding that fits best and let
    // the malformed-sequence check decide whether it fits well enough.
    let fewest_errors = |encoding: &&'static Encoding| {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        text.chars().filter(|&c| c == '\u{FFFD}').count()
    };
    let best = [GB18030, BIG5]
        .iter()
        .copied()
        .min_by_key(fewest_errors)
        .unwrap_or(GB18030);
    notes.push(format!(
        "encoding detection guessed {}; {} fits the bytes best",
        guess.name(),
        best.name()
    ));
    best
}

/// Accepts a decoding with a few malformed sequences (scrapers cut multi-byte characters)
/// but rejects one where the replacement characters are a real share of the text.
fn check_malformed(
    decoded: &str,
    encoding: &'static Encoding,
    notes: &mut Vec<String>,
) -> Result<(), Rejection> {
    let n_bad = decoded.chars().filter(|&c| c == '\u{FFFD}').count();
    let n_chars = decoded.chars().count();
    if n_bad > 8 && n_bad * 100 > n_chars {
        return Err(Rejection::Undecodable(format!(
            "{n_bad} malformed {} sequences in {n_chars} characters",
            encoding.name()
        )));
    }
    notes.push(format!(
        "removed {n_bad} malformed {} sequences",
        encoding.name()
    ));
    Ok(())
}

/// Turns CRLF and CR into LF and removes characters XML 1.0 forbids or discourages
/// (C0 and C1 controls but tab and line feed, U+FFFE, U+FFFF, stray byte-order marks and
/// replacement characters). Rejects text that is mostly control characters.
fn normalize(decoded: Cow<'_, str>, notes: &mut Vec<String>) -> Result<String, Rejection> {
    if !needs_normalizing(decoded.as_bytes()) {
        return Ok(decoded.into_owned());
    }
    let mut text = String::with_capacity(decoded.len());
    let mut n_removed = 0usize;
    let mut n_crlf = 0usize;
    let mut chars = decoded.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                n_crlf += 1;
                text.push('\n');
            }
            '\n' | '\t' => text.push(c),
            // Replacement characters were counted as malformed sequences already.
            '\u{FFFD}' => {}
            c if is_unwanted_char(c) => n_removed += 1,
            c => text.push(c),
        }
    }
    if n_removed > 16 && n_removed * 10 > decoded.chars().count() {
        return Err(Rejection::Binary(format!("{n_removed} control characters")));
    }
    if n_crlf > 0 {
        notes.push(format!("converted {n_crlf} CR or CRLF line ends"));
    }
    if n_removed > 0 {
        notes.push(format!("removed {n_removed} control characters"));
    }
    Ok(text)
}

/// True if the UTF-8 bytes hold a carriage return or an [unwanted
/// character](is_unwanted_char). Looks at bytes: most text needs nothing, and this is
/// the check every file pays.
fn needs_normalizing(bytes: &[u8]) -> bool {
    // A one-byte test first: it vectorises best, and most text has none of these.
    let n_leads = count_triples(bytes, |[byte, _, _]| {
        (byte < 0x20 && byte != b'\t' && byte != b'\n')
            || byte == 0x7F
            || byte == 0xC2
            || byte == 0xEF
    });
    if n_leads == 0 {
        return false;
    }
    let n_found = count_triples(bytes, |[byte, next, after]| {
        (byte < 0x20 && byte != b'\t' && byte != b'\n')
            || byte == 0x7F
            // U+0080–U+009F are C2 80–C2 9F.
            || (byte == 0xC2 && (0x80..=0x9F).contains(&next))
            // U+FEFF is EF BB BF; U+FFFD, U+FFFE, U+FFFF are EF BF BD–BF.
            || (byte == 0xEF && ((next == 0xBB && after == 0xBF) || (next == 0xBF && after >= 0xBD)))
    });
    n_found > 0
}

/// True for a character that must not reach a feed: XML 1.0 forbids C0 controls (but
/// tab, line feed, carriage return), U+FFFE and U+FFFF; C1 controls and U+FEFF are
/// never meaningful in an article; U+FFFD marks damage already reported.
pub fn is_unwanted_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{FEFF}' | '\u{FFFD}' | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ok(bytes: &[u8]) -> Decoded {
        match decode(bytes, DEFAULT_MAX_BYTES) {
            Ok(decoded) => decoded,
            Err(rejection) => panic!("rejected: {rejection}"),
        }
    }

    #[test]
    fn utf8_bom_is_dropped() {
        let decoded = decode_ok("\u{FEFF}你好 world".as_bytes());
        assert_eq!(decoded.text, "你好 world");
        assert_eq!(decoded.encoding, "UTF-8");
    }

    #[test]
    fn utf16_both_byte_orders() {
        let text = "外事 news\n";
        let mut little = vec![0xFF, 0xFE];
        let mut big = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            little.extend_from_slice(&unit.to_le_bytes());
            big.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(decode_ok(&little).text, text);
        assert_eq!(decode_ok(&big).text, text);
        assert_eq!(decode_ok(&big).encoding, "UTF-16BE");
    }

    #[test]
    fn line_ends_and_controls() {
        let decoded = decode_ok(b"a\r\nb\rc\x07d\x0Be\n");
        assert_eq!(decoded.text, "a\nb\ncde\n");
        assert!(decoded.notes.iter().any(|n| n.contains("2 CR")));
        assert!(decoded.notes.iter().any(|n| n.contains("2 control")));
    }

    #[test]
    fn english_in_windows_1252() {
        let decoded =
            decode_ok(b"The \x93Four Consciousnesses\x94 were discussed at length today.");
        assert_eq!(decoded.encoding, "windows-1252");
        assert!(decoded.text.contains('\u{201C}'));
    }

    #[test]
    fn byte_check_agrees_with_the_char_check() {
        for c in [
            '\u{0}', '\r', '\u{1F}', '\u{7F}', '\u{85}', '\u{9F}', '\u{FEFF}', '\u{FFFE}',
        ] {
            assert!(needs_normalizing(c.to_string().as_bytes()), "{c:?}");
        }
        for c in [
            '\t',
            '\n',
            '\u{A0}',
            '\u{FF0C}',
            '\u{FEFE}',
            '外',
            '\u{1F600}',
        ] {
            assert!(!needs_normalizing(c.to_string().as_bytes()), "{c:?}");
        }
    }

    #[test]
    fn rejections() {
        assert_eq!(decode(b"", 10), Err(Rejection::Empty));
        assert_eq!(decode(b" \n\t\r\n", 10), Err(Rejection::Empty));
        assert_eq!(decode(b"\xEF\xBB\xBF\n", 10), Err(Rejection::Empty));
        assert!(matches!(
            decode(b"abcdefghijk", 10),
            Err(Rejection::TooLarge {
                size: 11,
                limit: 10
            })
        ));
        assert!(matches!(decode(b"ab\0cd", 10), Err(Rejection::Binary(_))));
        assert!(matches!(
            decode(&[0xFF; 64], DEFAULT_MAX_BYTES),
            Err(Rejection::Undecodable(_))
        ));
        let controls: Vec<u8> = (0..200u8).map(|i| i % 8 + 1).collect();
        assert!(matches!(
            decode(&controls, DEFAULT_MAX_BYTES),
            Err(Rejection::Binary(_))
        ));
    }
}
