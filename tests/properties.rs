//! Property tests: arbitrary bytes and arbitrary mixes of article-like lines never make
//! the formatter panic, and what comes out is always fit for a feed.

use proptest::prelude::*;
use twinfeed::decode::{is_unwanted_char, DEFAULT_MAX_BYTES};
use twinfeed::formatter::lang::{paragraph_lang, ParagraphLang};
use twinfeed::formatter::{Article, Item};
use twinfeed::ingest::ingest_bytes;

/// Pieces real files are made of: prose in both scripts and English, junk, metadata,
/// HTML, pinyin, control characters, odd white space and line ends.
const PIECES: &[&str] = &[
    "市政府外办召开会议,部署全年工作。",
    "市政府外辦黨組召開會議。",
    "應(yīng)邀請(qǐng)",
    "On June 1 the office met. Mr. Zhang presided.",
    "Zhang Yongwu (章勇武) said",
    "APP下载",
    "猜你喜欢",
    "责任编辑:张三",
    "Copyright © 2023 All Rights Reserved",
    "2021-03-05",
    "2021年3月5日",
    "《 人民日报 》( 2023年05月23日 01 版)",
    "关键词:外办外事市政府",
    "重庆与世界 2020年7期",
    "<p>",
    "</p><script>x</script>",
    "&amp;&lt;&#x4E2D;&#0;&bogus;",
    "]]>",
    "\u{0}\u{7}\u{1b}\u{85}\u{FFFE}",
    "\u{3000}\u{A0}\t",
    "\u{200B}\u{202E}",
    "“”‘’《》()",
    "\r\n",
    "\r",
    "\n",
    "\n\n",
    "(",
    ")",
    "…",
    "。",
];

fn check(article: &Article) {
    assert!(!article.is_empty());
    for (item, expected) in [
        (&article.zh, ParagraphLang::Chinese),
        (&article.en, ParagraphLang::English),
    ] {
        if let Some(item) = item {
            check_item(item, expected);
        }
    }
    for text in article.keywords.iter().chain(&article.source) {
        assert!(!text.contains(is_unwanted_char), "{text:?}");
    }
}

fn check_item(item: &Item, expected: ParagraphLang) {
    assert!(!item.title.trim().is_empty(), "empty title");
    assert!(!item.summary.trim().is_empty(), "empty summary");
    assert!(!item.paragraphs.is_empty(), "no paragraphs");
    for text in item.paragraphs.iter().chain([&item.title, &item.summary]) {
        assert!(
            !text.contains(is_unwanted_char),
            "forbidden character in {text:?}"
        );
        assert!(!text.contains('\n'), "line break in {text:?}");
    }
    for paragraph in &item.paragraphs {
        assert!(!paragraph.trim().is_empty(), "empty paragraph");
        assert_eq!(paragraph_lang(paragraph), expected, "{paragraph:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(ingested) = ingest_bytes(&bytes, DEFAULT_MAX_BYTES) {
            check(&ingested.article);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        if let Ok(ingested) = ingest_bytes(text.as_bytes(), DEFAULT_MAX_BYTES) {
            check(&ingested.article);
        }
    }

    #[test]
    fn article_like_mixes_stay_clean(
        picks in proptest::collection::vec(0..PIECES.len(), 1..40),
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        if let Ok(ingested) = ingest_bytes(text.as_bytes(), DEFAULT_MAX_BYTES) {
            check(&ingested.article);
        }
    }
}
