//! Property tests: arbitrary bytes and arbitrary mixes of article-like lines never make
//! the formatter panic, and what comes out always passes `Article::check`: no empty
//! paragraph or title, no XML-forbidden character, every paragraph in its item's
//! language.

use proptest::prelude::*;
use twinfeed::decode::DEFAULT_MAX_BYTES;
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
    "\u{FF0C}\u{FF1A}\u{FF08}\u{FF09}",
    "\r\n",
    "\r",
    "\n",
    "\n\n",
    "(",
    ")",
    "…",
    "。",
];

fn assert_clean(bytes: &[u8]) {
    if let Ok(ingested) = ingest_bytes(bytes, DEFAULT_MAX_BYTES) {
        assert!(
            !ingested.article.is_empty(),
            "an accepted article has an item"
        );
        if let Err(problem) = ingested.article.check() {
            panic!("{problem}\ninput: {:?}", String::from_utf8_lossy(bytes));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        assert_clean(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        assert_clean(text.as_bytes());
    }

    #[test]
    fn article_like_mixes_stay_clean(
        picks in proptest::collection::vec(0..PIECES.len(), 1..40),
    ) {
        let text: String = picks.iter().map(|&i| PIECES[i]).collect();
        assert_clean(text.as_bytes());
    }
}
