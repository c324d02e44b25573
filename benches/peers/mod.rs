//! The tools a user would pick instead of twinfeed, set up on the same articles for the
//! comparison benchmarks: Hugo (Debian's `hugo`), given a minimal bilingual site, and a
//! Python script with feedgen (`feedgen_build.py` beside this file). Each is `None` when
//! not installed; `benches/run-all` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use twinfeed::decode::DEFAULT_MAX_BYTES;
use twinfeed::ingest::ingest_bytes;

/// The Python peer script.
#[allow(dead_code)] // each benchmark uses some of the peers
pub const FEEDGEN_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/peers/feedgen_build.py"
);

/// Hugo's binary and version, if installed.
pub fn hugo() -> Option<(PathBuf, String)> {
    let output = Command::new("hugo").arg("version").output().ok()?;
    output.status.success().then(|| {
        let version = String::from_utf8_lossy(&output.stdout);
        (
            PathBuf::from("hugo"),
            version
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
        )
    })
}

/// python3 when feedgen can be imported; its version.
#[allow(dead_code)]
pub fn feedgen() -> Option<String> {
    let output = Command::new("python3")
        .args(["-c", "import feedgen.version as v; print(v.version_str)"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| format!("feedgen {}", String::from_utf8_lossy(&output.stdout).trim()))
}

const HUGO_CONFIG: &str = r#"baseURL = "http://127.0.0.1:8080/"
defaultContentLanguage = "zh"
defaultContentLanguageInSubdir = true
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]
enableRobotsTXT = false

[services.rss]
limit = 50

[languages.zh]
contentDir = "content/zh"
languageCode = "zh"
title = "双语新闻"
weight = 1

[languages.en]
contentDir = "content/en"
languageCode = "en"
title = "Bilingual news"
weight = 2
"#;

const HUGO_SINGLE: &str = r#"<!doctype html>
<html lang="{{ .Site.Language.Lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Title }}</title></head>
<body><article><h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02" }}</time>
{{ .Content }}</article></body></html>
"#;

const HUGO_LIST: &str = r#"<!doctype html>
<html lang="{{ .Site.Language.Lang }}"><head><meta charset="utf-8">
<title>{{ .Site.Title }}</title>
{{ with .OutputFormats.Get "rss" }}<link rel="alternate" type="application/rss+xml" href="{{ .Permalink }}">{{ end }}
</head><body><h1>{{ .Site.Title }}</h1><ul>
{{ range first 50 .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}
</ul></body></html>
"#;

/// Writes a minimal bilingual Hugo site for the articles in `inbox` into `site`: each
/// article split by twinfeed's formatter (untimed: Hugo cannot split a bilingual text
/// itself, so it is handed the split) into `content/zh/` and `content/en/` Markdown with
/// JSON front matter. Hugo then renders a page per article and each language's RSS.
pub fn hugo_site(inbox: &Path, site: &Path) -> std::io::Result<usize> {
    for folder in ["content/zh", "content/en", "layouts/_default"] {
        std::fs::create_dir_all(site.join(folder))?;
    }
    std::fs::write(site.join("hugo.toml"), HUGO_CONFIG)?;
    std::fs::write(site.join("layouts/_default/single.html"), HUGO_SINGLE)?;
    std::fs::write(site.join("layouts/_default/list.html"), HUGO_LIST)?;
    let mut n_pages = 0;
    let mut names: Vec<PathBuf> = std::fs::read_dir(inbox)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        n_pages += hugo_pages(&path, site)?;
    }
    Ok(n_pages)
}

/// Writes one inbox file's Hugo pages into `site`; returns how many.
pub fn hugo_pages(path: &Path, site: &Path) -> std::io::Result<usize> {
    let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
        return Ok(0);
    };
    let Ok(ingested) = ingest_bytes(&std::fs::read(path)?, DEFAULT_MAX_BYTES) else {
        return Ok(0);
    };
    let article = ingested.article;
    // Undated articles are dated now, as twinfeed dates them when it first sees them.
    let date = article.date.map_or_else(
        || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        |date| format!("{}T00:00:00+08:00", date.format("%Y-%m-%d")),
    );
    let mut n_pages = 0;
    for (lang, item) in [("zh", &article.zh), ("en", &article.en)] {
        let Some(item) = item else { continue };
        let front = serde_json::json!({
            "title": item.title,
            "date": date,
            "summary": item.summary,
            "tags": article.keywords,
        });
        let body = item.paragraphs.join("\n\n");
        std::fs::write(
            site.join(format!("content/{lang}/{stem}.md")),
            format!("{front}\n\n{body}\n"),
        )?;
        n_pages += 1;
    }
    Ok(n_pages)
}
