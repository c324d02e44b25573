//! A deterministic corpus of seed-like article files for benchmarks: paragraphs from the
//! seeds in Traditional and Simplified Chinese and English, in every order, with title,
//! date, source and keywords lines, header junk, related-article blocks and footers.

use std::path::Path;

use twinfeed::formatter::lang::{chinese_script, paragraph_lang, LangTag, ParagraphLang};

const SEEDS: &[&str] = &[
    include_str!("../../tests/fixtures/seeds/000_fb95044e7f3821d4.txt"),
    include_str!("../../tests/fixtures/seeds/001_1fbc44d11a2c24ea.txt"),
    include_str!("../../tests/fixtures/seeds/002_08a97c52deef5f3b.txt"),
    include_str!("../../tests/fixtures/seeds/003_77a3382a7273a2e2.txt"),
    include_str!("../../tests/fixtures/seeds/004_91f0465ba0884ecc.txt"),
];

const HEADERS: &[&str] = &["APP下载", "当前位置:首页 > 外事要闻", "扫一扫,分享到微信"];
const FOOTERS: &[&str] = &[
    "北疆新闻版权与免责声明:\n一、凡本站中注明“来源:北疆新闻”的所有文字,版权均属北疆新闻所有。\n本站违法和不良信息举报电话:15648148811蒙ICP备16001043号-1",
    "Copyright © 2016-2023 Example News. All Rights Reserved.\n京ICP备12345678号-1",
    "责任编辑:张三",
];
const RELATED: &str = "猜你喜欢\n外办外事市政府\n市政府外办组织开展2020外事礼品企业交流活动\nA View on the American's Pursuit of Values Through Grapes of Wrath";

/// splitmix64: a tiny deterministic generator, enough to vary a corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, pool: &[&'a str]) -> &'a str {
        pool[self.below(pool.len())]
    }
}

/// Paragraph pools taken from the seeds.
struct Pools {
    hant: Vec<&'static str>,
    hans: Vec<&'static str>,
    en: Vec<&'static str>,
}

/// The pools, computed once per process.
fn pools() -> &'static Pools {
    static POOLS: std::sync::OnceLock<Pools> = std::sync::OnceLock::new();
    POOLS.get_or_init(compute_pools)
}

fn compute_pools() -> Pools {
    let mut pools = Pools {
        hant: Vec::new(),
        hans: Vec::new(),
        en: Vec::new(),
    };
    for seed in SEEDS {
        for line in seed.lines().map(str::trim).filter(|line| line.len() > 120) {
            match paragraph_lang(line) {
                ParagraphLang::English => pools.en.push(line),
                ParagraphLang::Chinese => match chinese_script([line]).0 {
                    LangTag::ZhHant => pools.hant.push(line),
                    _ => pools.hans.push(line),
                },
                ParagraphLang::Neither => {}
            }
        }
    }
    pools
}

/// The text of article `index`; the same index always gives the same text.
pub fn article(index: usize) -> String {
    let pools = pools();
    let mut rng = Rng(index as u64 ^ 0x5EED);
    let chinese = if rng.chance(50) {
        &pools.hant
    } else {
        &pools.hans
    };
    let n_zh = if rng.chance(10) { 0 } else { 2 + rng.below(4) };
    let n_en = if rng.chance(20) && n_zh > 0 {
        0
    } else {
        2 + rng.below(4)
    };
    let mut lines: Vec<String> = Vec::new();
    if rng.chance(30) {
        lines.push(rng.pick(HEADERS).to_string());
    }
    if rng.chance(40) {
        lines.push(format!("外事工作会议第{index}次会议召开"));
    }
    if rng.chance(50) {
        lines.push(format!(
            "20{:02}-{:02}-{:02}",
            10 + rng.below(15),
            1 + rng.below(12),
            1 + rng.below(28)
        ));
    }
    if rng.chance(20) {
        lines.push("关键词:外办外事市政府".to_string());
    }
    let zh: Vec<&str> = (0..n_zh).map(|_| rng.pick(chinese)).collect();
    let en: Vec<&str> = (0..n_en).map(|_| rng.pick(&pools.en)).collect();
    match rng.below(10) {
        0 => lines.extend(en.iter().chain(&zh).map(|p| p.to_string())),
        1 => {
            for pair in 0..zh.len().max(en.len()) {
                lines.extend(zh.get(pair).map(|p| p.to_string()));
                lines.extend(en.get(pair).map(|p| p.to_string()));
            }
        }
        _ => lines.extend(zh.iter().chain(&en).map(|p| p.to_string())),
    }
    if rng.chance(10) {
        lines.push("《 人民日报 》( 2023年05月23日 01 版)".to_string());
    }
    if rng.chance(20) {
        lines.push(RELATED.to_string());
    }
    if rng.chance(20) {
        lines.push(rng.pick(FOOTERS).to_string());
    }
    let separator = if rng.chance(50) { "\n" } else { "\n\n" };
    lines.join(separator)
}

/// Writes `n_files` articles into `folder` as `NNNNNN_corpus.txt`; returns total bytes.
pub fn write(folder: &Path, n_files: usize) -> std::io::Result<u64> {
    let mut n_bytes = 0;
    for index in 0..n_files {
        let text = article(index);
        n_bytes += text.len() as u64;
        std::fs::write(folder.join(format!("{index:06}_corpus.txt")), text)?;
    }
    Ok(n_bytes)
}

/// Reads every file in `folder` once: the floor any tool that looks at the files pays.
#[allow(dead_code)] // not every benchmark that shares the corpus measures the floor
pub fn read_all(folder: &Path) -> std::time::Duration {
    let start = std::time::Instant::now();
    let mut n_bytes = 0usize;
    for entry in std::fs::read_dir(folder).expect("the folder") {
        let bytes = std::fs::read(entry.expect("an entry").path()).expect("a file");
        n_bytes += std::hint::black_box(bytes).len();
    }
    std::hint::black_box(n_bytes);
    start.elapsed()
}
