//! The formatter's acceptance list, asserted field by field on the real seeds and on
//! the one-concern fixtures (the snapshots show everything; these pin what matters).

use serde_json::Value;

use crate::support::{fixtures, inspect, seed};

fn paragraphs(item: &Value) -> Vec<&str> {
    item["paragraphs"]
        .as_array()
        .expect("paragraphs is an array")
        .iter()
        .map(|p| p.as_str().expect("a paragraph is a string"))
        .collect()
}

fn all_text(document: &Value) -> String {
    let mut text = String::new();
    for lang in ["zh", "en"] {
        if document[lang].is_null() {
            continue;
        }
        text.push_str(document[lang]["title"].as_str().unwrap_or_default());
        text.push_str(document[lang]["summary"].as_str().unwrap_or_default());
        for paragraph in paragraphs(&document[lang]) {
            text.push_str(paragraph);
        }
    }
    text
}

fn fixture(name: &str) -> Value {
    let inspected = inspect(&fixtures().join("formatter").join(name), &[]);
    inspected.json()
}

#[test]
fn seed_000_traditional_then_english() {
    let article = seed("000");
    assert_eq!(article["zh"]["lang"], "zh-Hant");
    assert_eq!(paragraphs(&article["zh"]).len(), 3);
    assert_eq!(paragraphs(&article["en"]).len(), 3);
    assert_eq!(article["en"]["lang"], "en");
    assert!(paragraphs(&article["en"])[0].starts_with("In order to study in-depth"));
    assert_eq!(article["date"], Value::Null);
}

#[test]
fn seed_001_pinyin_readings_removed() {
    let article = seed("001");
    let text = all_text(&article);
    for reading in ["(yīng)", "(guó)", "(qǐng)", "(shì)", "(huì)"] {
        assert!(!text.contains(reading), "{reading} left in the text");
    }
    let first = paragraphs(&article["zh"])[0];
    assert!(first.starts_with("5月14日,應市委外辦邀請"), "{first}");
    // Every reading is gone, not only the sampled ones: no `(` follows a Han character.
    let chars: Vec<char> = text.chars().collect();
    for pair in chars.windows(2) {
        let han_before = ('\u{4E00}'..='\u{9FFF}').contains(&pair[0]);
        assert!(
            !(han_before && pair[1] == '('),
            "a reading is left after {}",
            pair[0]
        );
    }
    assert_eq!(paragraphs(&article["en"]).len(), 3);
    // A partial date in prose is not a publication date.
    assert_eq!(article["date"], Value::Null);
}

#[test]
fn seed_002_title_metadata_no_junk() {
    let article = seed("002");
    assert_eq!(
        article["zh"]["title"],
        "市政府外办党组召开会议传达学习习近平总书记在全国两会期间重要讲话精神"
    );
    assert_eq!(article["zh"]["title_explicit"], true);
    assert_eq!(article["zh"]["lang"], "zh-Hans");
    assert_eq!(article["date"], "2020-08-04");
    assert_eq!(article["source"], "重庆与世界 2020年7期");
    assert_eq!(
        article["keywords"],
        serde_json::json!(["外办", "外事", "市政府"])
    );
    let text = all_text(&article);
    assert!(!text.contains("APP下载"));
    assert!(!text.contains("猜你喜欢"));
    assert!(!text.contains("Grapes of Wrath"));
    assert!(!text.contains("章勇武任重庆市政府外办党组书记"));
    let english = paragraphs(&article["en"]);
    assert_eq!(english.len(), 3);
    assert!(english[0].starts_with("On June 1st the Party Group"));
    assert!(english[2].starts_with("The meeting made repeated call"));
    // Real parentheses stay.
    assert!(english[0].contains("(FAOCMG)"));
    assert_eq!(paragraphs(&article["zh"]).len(), 3);
}

#[test]
fn seed_003_leading_blank_line_changes_nothing() {
    let article = seed("003");
    assert_eq!(paragraphs(&article["zh"]).len(), 5);
    assert_eq!(paragraphs(&article["en"]).len(), 5);
    assert_eq!(article["zh"]["lang"], "zh-Hant");
    assert_eq!(article["zh"]["title_explicit"], false);
}

#[test]
fn seed_004_chinese_only_source_line_footer_dropped() {
    let article = seed("004");
    assert_eq!(article["en"], Value::Null);
    assert_eq!(article["zh"]["lang"], "zh-Hans");
    assert_eq!(article["date"], "2023-05-23");
    assert_eq!(article["source"], "人民日报");
    let text = all_text(&article);
    for junk in [
        "北疆新闻",
        "版权",
        "bjwmaster@163.com",
        "15648148811",
        "ICP",
        "《 人民日报 》",
    ] {
        assert!(!text.contains(junk), "{junk} reached the text");
    }
    assert_eq!(paragraphs(&article["zh"]).len(), 7);
}

#[test]
fn every_encoding_gives_the_same_text() {
    let expected = fixture("enc_crlf.txt");
    for name in [
        "enc_utf8_bom.txt",
        "enc_utf16be_bom.txt",
        "enc_gbk.txt",
        "enc_gbk_truncated.txt",
    ] {
        let article = fixture(name);
        assert_eq!(article["zh"], expected["zh"], "{name}");
        assert_eq!(article["en"], expected["en"], "{name}");
    }
    let traditional = fixture("enc_cr.txt");
    for name in ["enc_big5.txt", "enc_utf16le_bom.txt"] {
        let article = fixture(name);
        assert_eq!(article["zh"], traditional["zh"], "{name}");
        assert_eq!(article["zh"]["lang"], "zh-Hant", "{name}");
    }
    assert_eq!(fixture("enc_big5.txt")["encoding"], "Big5");
    assert_eq!(fixture("enc_gbk.txt")["encoding"], "gb18030");
}

#[test]
fn orders_and_mixed_paragraphs() {
    let en_first = fixture("order_en_then_zh.txt");
    assert_eq!(paragraphs(&en_first["zh"]).len(), 2);
    assert_eq!(paragraphs(&en_first["en"]).len(), 2);
    let interleaved = fixture("order_interleaved.txt");
    let zh = paragraphs(&interleaved["zh"]);
    assert_eq!(zh.len(), 3);
    assert!(zh[2].starts_with("会议强调"));
    assert_eq!(paragraphs(&interleaved["en"]).len(), 3);
    let english_only = fixture("order_en_only.txt");
    assert_eq!(english_only["zh"], Value::Null);
    assert_eq!(
        english_only["en"]["title"],
        "Chongqing Hosts Consular Corps Reception"
    );
    assert_eq!(english_only["date"], "2021-03-05");
    let named = fixture("en_with_chinese_name.txt");
    assert_eq!(named["zh"], Value::Null);
    assert!(paragraphs(&named["en"])[0].contains("(章勇武)"));
}

#[test]
fn junk_of_every_kind_is_dropped() {
    for (name, junk) in [
        (
            "junk_header.txt",
            vec!["APP下载", "扫一扫", "当前位置", "字体", "返回顶部"],
        ),
        (
            "junk_related.txt",
            vec!["相关阅读", "四川", "Grapes of Wrath", "推荐阅读"],
        ),
        (
            "junk_editor.txt",
            vec!["责任编辑", "李四", "王五", "重庆日报"],
        ),
        (
            "junk_footer.txt",
            vec!["Copyright", "ICP", "公网安备", "举报", "news@example.com"],
        ),
    ] {
        let article = fixture(name);
        let text = all_text(&article);
        for word in junk {
            assert!(!text.contains(word), "{name}: `{word}` reached the text");
        }
        assert!(
            !text.is_empty(),
            "{name}: the article text went with the junk"
        );
    }
    // An editor line is junk, a paragraph about the editorial office is not.
    let editor = fixture("junk_editor.txt");
    assert_eq!(editor["source"], "重庆日报");
    assert!(paragraphs(&editor["zh"])
        .iter()
        .any(|p| p.starts_with("编辑部的同志")));
}

#[test]
fn dates_in_metadata_position_only() {
    for name in [
        "date_iso.txt",
        "date_zh.txt",
        "date_slash.txt",
        "date_source_line.txt",
    ] {
        assert_eq!(fixture(name)["date"], "2021-03-05", "{name}");
    }
    assert_eq!(fixture("date_source_line.txt")["source"], "光明日报");
    assert_eq!(fixture("date_in_prose_only.txt")["date"], Value::Null);
}

#[test]
fn html_never_reaches_the_text_as_markup() {
    let article = fixture("html_tags_entities.txt");
    let text = all_text(&article);
    assert!(
        !text.contains("<p>") && !text.contains("document.write") && !text.contains("color:red")
    );
    assert!(text.contains("市政府外办&市外侨办"));
    assert!(
        text.contains("a <script> tag is text"),
        "entities decode to text"
    );
}

#[test]
fn derived_titles_are_cut_with_an_ellipsis() {
    let no_boundary = fixture("title_no_clause_boundary.txt");
    let title = no_boundary["zh"]["title"].as_str().expect("a title");
    assert_eq!(title.chars().count(), 30);
    assert!(title.ends_with('…'));
    let short = fixture("title_short_sentence.txt");
    assert_eq!(short["zh"]["title"], "会议召开");
    assert_eq!(short["en"]["title"], "The meeting opened");
    for (_, document) in [("000", seed("000")), ("002", seed("002"))] {
        let title = document["en"]["title"].as_str().expect("a title");
        assert!(
            title.chars().count() <= 90 && title.ends_with('…'),
            "{title}"
        );
        assert!(!title.trim_end_matches('…').ends_with(' '));
    }
}

#[test]
fn rejections_name_the_file_and_reason() {
    for (name, reason) in [
        ("reject_empty.txt", "empty"),
        ("reject_whitespace.txt", "empty"),
        ("reject_binary.txt", "binary"),
        ("reject_undecodable.txt", "cannot be decoded"),
        ("reject_no_text.txt", "no Chinese or English"),
        ("reject_only_junk.txt", "no Chinese or English"),
    ] {
        let inspected = inspect(&fixtures().join("formatter").join(name), &[]);
        assert_eq!(inspected.code, 1, "{name}");
        assert!(inspected.stderr.contains(name), "{}", inspected.stderr);
        let rejected = inspected.json()["rejected"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(rejected.contains(reason), "{name}: {rejected}");
    }
}

#[test]
fn files_over_the_size_limit_are_rejected_unread() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("big.txt");
    std::fs::write(&path, "会议召开。\n".repeat(100)).expect("write the file");
    let inspected = inspect(&path, &["--max-bytes", "512"]);
    assert_eq!(inspected.code, 1);
    assert!(inspected.json()["rejected"]
        .as_str()
        .unwrap_or_default()
        .contains("over the limit"));
    assert_eq!(inspect(&path, &[]).code, 0);
    let missing = inspect(&folder.path().join("missing.txt"), &[]);
    assert_eq!(
        missing.code, 2,
        "an unreadable file is an error, not a rejection"
    );
    assert!(missing.stderr.contains("missing.txt"));
}
