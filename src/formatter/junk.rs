//! The web-page junk that scrapers leave in articles, as one table of rules: header
//! lines, related-article blocks, editor lines and site footers. Add a rule here and
//! every file benefits; nothing else in the formatter knows these words.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

/// What a rule does with the line it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Drop this line only.
    DropLine,
    /// Drop this line and every line after it (a related-articles list, a footer).
    DropRest,
}

/// Where in the line the keyword must stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole line is the keyword, perhaps with a trailing colon.
    Whole,
    /// The line starts with the keyword.
    Start,
    /// The line starts with the keyword as a label: the keyword then a colon.
    Label,
    /// The keyword is anywhere in the line.
    Anywhere,
}

/// One junk rule. `max_chars` keeps a rule off real paragraphs that merely mention its
/// keyword: a 300-character paragraph about copyright law is not a footer.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub keyword: &'static str,
    place: Place,
    max_chars: usize,
    pub action: Action,
    pub kind: &'static str,
}

const fn rule(
    kind: &'static str,
    keyword: &'static str,
    place: Place,
    max_chars: usize,
    action: Action,
) -> Rule {
    Rule {
        keyword,
        place,
        max_chars,
        action,
        kind,
    }
}

use Action::{DropLine, DropRest};
use Place::{Anywhere, Label, Start, Whole};

const HEADER: &str = "header line";
const RELATED: &str = "related-articles block";
const EDITOR: &str = "editor line";
const FOOTER: &str = "site footer";

/// Every junk rule. Keywords are matched case-sensitively; list both scripts.
const RULES: &[Rule] = &[
    // Page chrome above the article.
    rule(HEADER, "APP下载", Whole, 12, DropLine),
    rule(HEADER, "下载APP", Whole, 12, DropLine),
    rule(HEADER, "扫一扫", Start, 40, DropLine),
    rule(HEADER, "掃一掃", Start, 40, DropLine),
    rule(HEADER, "扫码", Start, 40, DropLine),
    rule(HEADER, "分享到", Start, 40, DropLine),
    rule(HEADER, "当前位置", Start, 80, DropLine),
    rule(HEADER, "您当前的位置", Start, 80, DropLine),
    rule(HEADER, "您的位置", Start, 80, DropLine),
    rule(HEADER, "首页 >", Start, 80, DropLine),
    rule(HEADER, "首页>", Start, 80, DropLine),
    rule(HEADER, "【字体", Start, 40, DropLine),
    rule(HEADER, "字号", Start, 20, DropLine),
    rule(HEADER, "【打印】", Anywhere, 40, DropLine),
    rule(HEADER, "【关闭】", Anywhere, 40, DropLine),
    rule(HEADER, "打印本页", Anywhere, 40, DropLine),
    rule(HEADER, "关闭窗口", Anywhere, 40, DropLine),
    rule(HEADER, "返回顶部", Whole, 12, DropLine),
    rule(HEADER, "点击数", Start, 30, DropLine),
    rule(HEADER, "浏览次数", Start, 30, DropLine),
    rule(HEADER, "阅读量", Start, 30, DropLine),
    // Lists of other articles, and everything after them.
    rule(RELATED, "猜你喜欢", Start, 20, DropRest),
    rule(RELATED, "猜你喜歡", Start, 20, DropRest),
    rule(RELATED, "相关阅读", Start, 20, DropRest),
    rule(RELATED, "相關閱讀", Start, 20, DropRest),
    rule(RELATED, "推荐阅读", Start, 20, DropRest),
    rule(RELATED, "推薦閱讀", Start, 20, DropRest),
    rule(RELATED, "延伸阅读", Start, 20, DropRest),
    rule(RELATED, "延伸閱讀", Start, 20, DropRest),
    rule(RELATED, "相关新闻", Start, 20, DropRest),
    rule(RELATED, "相關新聞", Start, 20, DropRest),
    rule(RELATED, "相关文章", Start, 20, DropRest),
    rule(RELATED, "相關文章", Start, 20, DropRest),
    rule(RELATED, "热门推荐", Start, 20, DropRest),
    rule(RELATED, "熱門推薦", Start, 20, DropRest),
    rule(RELATED, "精彩推荐", Start, 20, DropRest),
    rule(RELATED, "更多阅读", Start, 20, DropRest),
    rule(RELATED, "往期回顾", Start, 20, DropRest),
    rule(RELATED, "Related Articles", Whole, 20, DropRest),
    rule(RELATED, "Related Stories", Whole, 20, DropRest),
    rule(RELATED, "Related News", Whole, 20, DropRest),
    rule(RELATED, "You may also like", Whole, 20, DropRest),
    rule(RELATED, "You Might Also Like", Whole, 20, DropRest),
    // Who edited, checked or reprinted it.
    rule(EDITOR, "责任编辑", Label, 60, DropLine),
    rule(EDITOR, "責任編輯", Label, 60, DropLine),
    rule(EDITOR, "【责任编辑", Start, 60, DropLine),
    rule(EDITOR, "(责任编辑", Start, 60, DropLine),
    rule(EDITOR, "\u{FF08}责任编辑", Start, 60, DropLine),
    rule(EDITOR, "编辑", Label, 40, DropLine),
    rule(EDITOR, "編輯", Label, 40, DropLine),
    rule(EDITOR, "责编", Label, 40, DropLine),
    rule(EDITOR, "校对", Label, 40, DropLine),
    rule(EDITOR, "审核", Label, 40, DropLine),
    rule(EDITOR, "审校", Label, 40, DropLine),
    rule(EDITOR, "作者", Label, 40, DropLine),
    rule(EDITOR, "记者", Label, 40, DropLine),
    rule(EDITOR, "原标题", Label, 100, DropLine),
    rule(EDITOR, "Editor", Label, 60, DropLine),
    // Site footers: the disclaimer heading starts a block, the rest are single lines.
    rule(FOOTER, "版权与免责声明", Anywhere, 40, DropRest),
    rule(FOOTER, "版權與免責聲明", Anywhere, 40, DropRest),
    rule(FOOTER, "免责声明", Start, 40, DropRest),
    rule(FOOTER, "免責聲明", Start, 40, DropRest),
    rule(FOOTER, "版权声明", Start, 200, DropRest),
    rule(FOOTER, "版權聲明", Start, 200, DropRest),
    rule(FOOTER, "Copyright ©", Anywhere, 200, DropLine),
    rule(FOOTER, "Copyright (c)", Anywhere, 200, DropLine),
    rule(FOOTER, "Copyright©", Anywhere, 200, DropLine),
    rule(FOOTER, "©", Start, 200, DropLine),
    rule(FOOTER, "All Rights Reserved", Anywhere, 200, DropLine),
    rule(FOOTER, "All rights reserved", Anywhere, 200, DropLine),
    rule(FOOTER, "版权所有", Anywhere, 120, DropLine),
    rule(FOOTER, "版權所有", Anywhere, 120, DropLine),
    rule(FOOTER, "ICP备", Anywhere, 200, DropLine),
    rule(FOOTER, "ICP證", Anywhere, 200, DropLine),
    rule(FOOTER, "ICP证", Anywhere, 200, DropLine),
    rule(FOOTER, "公网安备", Anywhere, 200, DropLine),
    rule(FOOTER, "公網安備", Anywhere, 200, DropLine),
    rule(FOOTER, "举报电话", Anywhere, 160, DropLine),
    rule(FOOTER, "舉報電話", Anywhere, 160, DropLine),
    rule(FOOTER, "举报邮箱", Anywhere, 160, DropLine),
    rule(FOOTER, "违法和不良信息举报", Anywhere, 160, DropLine),
    rule(FOOTER, "联系邮箱", Anywhere, 160, DropLine),
    rule(FOOTER, "投稿邮箱", Anywhere, 160, DropLine),
    rule(FOOTER, "互联网新闻信息服务许可证", Anywhere, 200, DropLine),
    rule(FOOTER, "未经授权", Start, 160, DropLine),
    rule(FOOTER, "未经书面授权", Anywhere, 160, DropLine),
    rule(FOOTER, "转载请注明", Anywhere, 160, DropLine),
    rule(FOOTER, "轉載請註明", Anywhere, 160, DropLine),
];

/// The largest `max_chars` of any rule.
const LONGEST_JUNK_CHARS: usize = 200;

static MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(RULES.iter().map(|rule| rule.keyword))
        .expect("the junk keywords build an automaton")
});

/// The first rule (in table order) that matches the line, if any. The line is already
/// trimmed.
pub fn classify(line: &str) -> Option<&'static Rule> {
    // No rule takes a line this long (checked in the tests): it is a real paragraph.
    if line.len() > LONGEST_JUNK_CHARS && line.chars().count() > LONGEST_JUNK_CHARS {
        return None;
    }
    if !MATCHER.is_match(line) {
        return None;
    }
    let mut best: Option<usize> = None;
    for found in MATCHER.find_overlapping_iter(line) {
        let index = found.pattern().as_usize();
        let rule = &RULES[index];
        if best.is_some_and(|best| best <= index) || !fits(rule, line, found.start()) {
            continue;
        }
        best = Some(index);
    }
    best.map(|index| &RULES[index])
}

fn fits(rule: &Rule, line: &str, start: usize) -> bool {
    if line.chars().count() > rule.max_chars {
        return false;
    }
    let after = &line[start + rule.keyword.len()..];
    match rule.place {
        Place::Anywhere => true,
        Place::Start => start == 0,
        Place::Label => start == 0 && after.trim_start().starts_with([':', '\u{FF1A}']),
        Place::Whole => {
            start == 0
                && after
                    .trim_matches(|c: char| c.is_whitespace() || c == ':' || c == '\u{FF1A}')
                    .is_empty()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(line: &str) -> Option<Action> {
        classify(line).map(|rule| rule.action)
    }

    #[test]
    fn seed_junk_is_recognised() {
        assert_eq!(action("APP下载"), Some(DropLine));
        assert_eq!(action("猜你喜欢"), Some(DropRest));
        assert_eq!(action("北疆新闻版权与免责声明:"), Some(DropRest));
        assert_eq!(
            action("本站违法和不良信息举报电话:15648148811蒙ICP备16001043号-1"),
            Some(DropLine)
        );
        assert_eq!(action("责任编辑:张三"), Some(DropLine));
        assert_eq!(action("编辑\u{FF1A}李四"), Some(DropLine));
        assert_eq!(action("编辑部召开会议"), None);
    }

    #[test]
    fn prose_that_mentions_a_keyword_is_kept() {
        assert_eq!(action("他在APP下载页面看到了通知。"), None);
        let long = format!(
            "会议指出,{}版权所有的作品受法律保护。",
            "要加强保护。".repeat(30)
        );
        assert_eq!(action(&long), None);
        assert_eq!(
            action("Copyright law was discussed at length by the committee."),
            None
        );
    }

    #[test]
    fn no_rule_takes_lines_longer_than_the_shortcut_allows() {
        assert!(RULES
            .iter()
            .all(|rule| rule.max_chars <= LONGEST_JUNK_CHARS));
    }

    #[test]
    fn every_rule_matches_its_own_keyword() {
        for rule in RULES {
            let line = match rule.place {
                Place::Label => format!("{}:", rule.keyword),
                _ => rule.keyword.to_string(),
            };
            let matched = classify(&line);
            assert!(
                matched.is_some(),
                "rule {:?} does not match itself",
                rule.keyword
            );
        }
    }
}
