//! Metadata lines: a standalone date, a newspaper source line with its date, a
//! publication line, a `来源:` line and a keywords line. Only a whole line is metadata;
//! a date inside prose (`5月14日,…`) never is.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::{Captures, Regex};

/// What one metadata line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// A line that is only a date, perhaps labelled, timed and followed by a source.
    Date {
        date: NaiveDate,
        source: Option<String>,
    },
    /// `《 人民日报 》( 2023年05月23日 01 版)`, perhaps followed by site text (`rest`).
    SourceLine {
        source: String,
        date: Option<NaiveDate>,
        rest: String,
    },
    /// A periodical and its issue: `重庆与世界 2020年7期`.
    Publication(String),
    /// `来源:新华社` and the like.
    Source(String),
    /// `关键词:外办外事市政府`; the raw list, split later against the article's text.
    Keywords(String),
}

const MONTHS: &str = "January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";

/// A full date in any of the forms we accept, with named groups y, m, d (numeric) or
/// y, month, d (English).
fn date_pattern() -> String {
    format!(
        r"(?:(?P<y>\d{{4}})\s*(?:[-/.]\s*(?P<m>\d{{1,2}})\s*[-/.]\s*(?P<d>\d{{1,2}})|年\s*(?P<m2>\d{{1,2}})\s*月\s*(?P<d2>\d{{1,2}})\s*日)|(?P<month>{MONTHS})\.?\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{{4}})|(?P<d4>\d{{1,2}})\s+(?P<month4>{MONTHS})\.?,?\s+(?P<y4>\d{{4}}))"
    )
}

static DATE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?i)^(?:(?:发布时间|發布時間|发布日期|發布日期|时间|時間|日期|Published|Posted|Updated|Date)\s*[:\x{{FF1A}}]?\s*)?{date}(?:\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?(?:\s+(?:来源|來源|Source)\s*[:\x{{FF1A}}]\s*(?P<src>.+?))?\s*$",
        date = date_pattern()
    );
    Regex::new(&pattern).expect("the date-line pattern is a valid regular expression")
});

static SOURCE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"^《\s*(?P<name>[^》]{{1,40}}?)\s*》\s*[(\x{{FF08}}]\s*{date}\s*(?:第\s*)?(?:\d{{1,3}}\s*)?版?\s*[)\x{{FF09}}]",
        date = date_pattern()
    );
    Regex::new(&pattern).expect("the source-line pattern is a valid regular expression")
});

/// Longest line (in bytes) read as a date, labelled or publication line.
const MAX_META_LINE_BYTES: usize = 300;

static PUBLICATION_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\S[^。,\x{FF0C};\x{FF1B}]{0,30}?\s*\d{4}\s*年\s*(?:第\s*)?\d{1,2}\s*期$")
        .expect("the publication-line pattern is a valid regular expression")
});

static LABELLED_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?P<label>关键词|關鍵詞|关键字|關鍵字|标签|標籤|Keywords|Tags|来源|來源|Source)\s*[:\x{FF1A}]\s*(?P<value>.{1,200})$")
        .expect("the labelled-line pattern is a valid regular expression")
});

/// Reads one (trimmed) line as metadata, or returns `None` if it is not metadata.
pub fn parse_line(line: &str) -> Option<Meta> {
    if line.starts_with('《') {
        return parse_source_line(line);
    }
    // Other metadata lines are short, and start with a digit, a Latin letter or a
    // Chinese label; prose is turned away here, before any regular expression runs.
    let first = line.chars().next()?;
    let labelled = matches!(
        first,
        '发' | '發' | '时' | '時' | '日' | '关' | '關' | '标' | '標' | '来' | '來'
    );
    if line.len() > MAX_META_LINE_BYTES {
        return None;
    }
    if !(first.is_ascii_alphanumeric() || labelled) {
        return PUBLICATION_LINE
            .is_match(line)
            .then(|| Meta::Publication(line.to_string()));
    }
    if let Some(captures) = DATE_LINE.captures(line) {
        if let Some(date) = date_from(&captures) {
            let source = captures.name("src").map(|m| m.as_str().to_string());
            return Some(Meta::Date { date, source });
        }
    }
    if let Some(captures) = LABELLED_LINE.captures(line) {
        let value = captures["value"].trim().to_string();
        return Some(match &captures["label"].to_lowercase()[..] {
            "来源" | "來源" | "source" => Meta::Source(value),
            _ => Meta::Keywords(value),
        });
    }
    if PUBLICATION_LINE.is_match(line) {
        return Some(Meta::Publication(line.to_string()));
    }
    None
}

/// `《 人民日报 》( 2023年05月23日 01 版)` and whatever follows it on the line.
fn parse_source_line(line: &str) -> Option<Meta> {
    let captures = SOURCE_LINE.captures(line)?;
    let end = captures.get(0).map_or(0, |m| m.end());
    Some(Meta::SourceLine {
        source: captures["name"].to_string(),
        date: date_from(&captures),
        rest: line[end..].trim().to_string(),
    })
}

/// The date in a match of [`date_pattern`], if it is a real calendar date.
fn date_from(captures: &Captures) -> Option<NaiveDate> {
    let number = |names: &[&str]| -> Option<u32> {
        names
            .iter()
            .find_map(|name| captures.name(name))
            .and_then(|m| m.as_str().parse().ok())
    };
    let year = number(&["y", "y3", "y4"])?;
    let day = number(&["d", "d2", "d3", "d4"])?;
    let month = match number(&["m", "m2"]) {
        Some(month) => month,
        None => month_number(
            captures
                .name("month")
                .or_else(|| captures.name("month4"))?
                .as_str(),
        )?,
    };
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

fn month_number(name: &str) -> Option<u32> {
    let prefix = name.get(..3)?.to_ascii_lowercase();
    let months = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    months
        .iter()
        .position(|&month| month == prefix)
        .map(|index| index as u32 + 1)
}

/// Splits a keywords line. Lists split at commas, `、`, semicolons, `|` or `/` when
/// they have any (so `foreign affairs, trade` keeps its two-word keyword), else at white
/// space; an undelimited run of Chinese (`外办外事市政府`, the scraper glued the tag links together) splits into the
/// fewest words that each occur in the article's text (`外办`, `外事`, `市政府`), and
/// stays whole when no such split exists.
pub fn split_keywords(raw: &str, article_text: &str) -> Vec<String> {
    let delimiters = [',', '\u{FF0C}', '、', ';', '\u{FF1B}', '|', '/'];
    let words: Vec<String> = if raw.contains(delimiters) {
        raw.split(delimiters).map(str::to_string).collect()
    } else if raw.contains(char::is_whitespace) {
        raw.split_whitespace().map(str::to_string).collect()
    } else {
        return segment_by_text(raw, article_text).unwrap_or_else(|| vec![raw.to_string()]);
    };
    words
        .into_iter()
        .map(|word| word.trim().to_string())
        .filter(|word| !word.is_empty())
        .collect()
}

/// The fewest pieces of 2–8 characters, each found in `text`, that make up `run`.
fn segment_by_text(run: &str, text: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = run.chars().collect();
    if chars.len() > 64 {
        return None;
    }
    let n = chars.len();
    // best[i] = (pieces needed for chars[i..], length of the first piece).
    let mut best: Vec<Option<(usize, usize)>> = vec![None; n + 1];
    best[n] = Some((0, 0));
    for start in (0..n).rev() {
        for length in 2..=8.min(n - start) {
            let Some((rest_pieces, _)) = best[start + length] else {
                continue;
            };
            let piece: String = chars[start..start + length].iter().collect();
            let better = best[start].is_none_or(|(pieces, _)| rest_pieces + 1 < pieces);
            if better && text.contains(&piece) {
                best[start] = Some((rest_pieces + 1, length));
            }
        }
    }
    best[0]?;
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < n {
        let (_, length) = best[start]?;
        pieces.push(chars[start..start + length].iter().collect());
        start += length;
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test dates are valid")
    }

    fn parsed_date(line: &str) -> Option<NaiveDate> {
        match parse_line(line)? {
            Meta::Date { date, .. } => Some(date),
            Meta::SourceLine { date, .. } => date,
            _ => None,
        }
    }

    #[test]
    fn date_forms() {
        for line in [
            "2021-03-05",
            "2021年3月5日",
            "2021/3/5",
            "2021.03.05 10:30",
            "March 5, 2021",
            "Mar. 5, 2021",
            "5 March 2021",
            "发布时间:2021-03-05 08:00:00",
            "Published: March 5th, 2021",
            "《 光明日报 》( 2021年03月05日 01 版)",
        ] {
            assert_eq!(parsed_date(line), Some(date(2021, 3, 5)), "{line}");
        }
    }

    #[test]
    fn prose_and_impossible_dates_are_not_metadata() {
        assert_eq!(parse_line("5月14日,應市委外辦邀請"), None);
        assert_eq!(parse_line("2021年3月5日,市政府召开会议。"), None);
        assert_eq!(parse_line("On March 5, 2021 the office met."), None);
        assert_eq!(parse_line("2021-02-30"), None);
    }

    #[test]
    fn source_line_with_trailing_site_text() {
        let line = "《 人民日报 》( 2023年05月23日 01 版)北疆新闻:内蒙古自治区重点新闻网站";
        assert_eq!(
            parse_line(line),
            Some(Meta::SourceLine {
                source: "人民日报".into(),
                date: Some(date(2023, 5, 23)),
                rest: "北疆新闻:内蒙古自治区重点新闻网站".into(),
            })
        );
    }

    #[test]
    fn labelled_and_publication_lines() {
        assert_eq!(
            parse_line("关键词:外办外事市政府"),
            Some(Meta::Keywords("外办外事市政府".into()))
        );
        assert_eq!(
            parse_line("来源:新华社"),
            Some(Meta::Source("新华社".into()))
        );
        assert_eq!(
            parse_line("重庆与世界 2020年7期"),
            Some(Meta::Publication("重庆与世界 2020年7期".into()))
        );
        assert_eq!(
            parse_line("2021-03-05 10:00 来源:人民网"),
            Some(Meta::Date {
                date: date(2021, 3, 5),
                source: Some("人民网".into())
            })
        );
    }

    #[test]
    fn keywords_split_against_the_text() {
        let text = "市政府外办党组召开会议,外事工作";
        assert_eq!(
            split_keywords("外办外事市政府", text),
            ["外办", "外事", "市政府"]
        );
        assert_eq!(split_keywords("外交, 外事", text), ["外交", "外事"]);
        assert_eq!(split_keywords("甲乙丙丁", text), ["甲乙丙丁"]);
        assert_eq!(
            split_keywords("外办 外事\u{3000}友城", text),
            ["外办", "外事", "友城"]
        );
        assert_eq!(
            split_keywords("foreign affairs, trade", text),
            ["foreign affairs", "trade"]
        );
    }
}
