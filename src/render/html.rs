//! HTML pages (one per item, an index per language, the home page with autodiscovery
//! links) and the OPML list, from minijinja templates: the operator's copies in
//! `paths.templates` where present, else the built-in ones compiled from `templates/`.
//! Every value is escaped.

use std::path::Path;

use anyhow::Context;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

use super::{page_url, utc, Entry, FeedInput};
use crate::config::Config;
use crate::store::{Lang, StoredItem};

/// The templates, by file name, with their built-in text.
const BUILT_IN: &[(&str, &str)] = &[
    ("article.html", include_str!("../../templates/article.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("feeds.opml", include_str!("../../templates/feeds.opml")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("digest.html", include_str!("../../templates/digest.html")),
];

/// Templates that make no page, left out of the fingerprint so that editing them
/// does not make every page again.
const NOT_PAGES: &[&str] = &["digest.txt", "digest.html"];

/// The loaded templates, and a fingerprint of their text for knowing when pages must
/// be made again.
pub struct Templates {
    environment: Environment<'static>,
    pub fingerprint: String,
}

#[derive(Serialize)]
struct SiteContext<'a> {
    lang: &'static str,
    title: &'a str,
    description: &'a str,
    home_url: String,
    atom_url: String,
    rss_url: String,
    json_url: String,
}

#[derive(Serialize)]
struct ArticleContext<'a> {
    site: SiteContext<'a>,
    item: ItemContext<'a>,
    sibling_url: Option<String>,
    sibling_lang: &'static str,
    sibling_label: &'static str,
}

#[derive(Serialize)]
struct IndexContext<'a> {
    site: SiteContext<'a>,
    items: Vec<ItemContext<'a>>,
}

#[derive(Serialize)]
struct HomeContext<'a> {
    sites: [SiteContext<'a>; 2],
    opml_url: String,
}

#[derive(Serialize)]
pub(crate) struct ItemContext<'a> {
    id: &'a str,
    lang: &'static str,
    title: &'a str,
    summary: &'a str,
    paragraphs: &'a [String],
    url: String,
    published_iso: String,
    published_date: String,
    source: Option<&'a str>,
    keywords: &'a [String],
}

impl Templates {
    /// Loads every template, preferring a file of the same name in `folder`. An error
    /// names the file and what is wrong with it.
    pub fn load(folder: &Path) -> anyhow::Result<Templates> {
        let mut environment = Environment::new();
        environment.set_auto_escape_callback(|name| {
            if name.ends_with(".html") || name.ends_with(".opml") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Escape `& < > " '`, enough for HTML text and attributes and for XML; the
        // built-in escaper also escapes `/`, which turns every URL into `&#x2f;` soup.
        environment.set_formatter(|out, state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let text = value.to_string();
            if *state.auto_escape() == AutoEscape::None || value.is_safe() {
                out.write_str(&text)?;
            } else {
                out.write_str(&html_escape::encode_quoted_attribute(&text))?;
            }
            Ok(())
        });
        let mut hasher = blake3::Hasher::new();
        for (name, built_in) in BUILT_IN {
            let path = folder.join(name);
            let (source, origin) = match std::fs::read_to_string(&path) {
                Ok(text) => (text, path.display().to_string()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    (built_in.to_string(), format!("built-in {name}"))
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot read {}", path.display()))
                }
            };
            if !NOT_PAGES.contains(name) {
                hasher.update(name.as_bytes());
                hasher.update(source.as_bytes());
            }
            environment
                .add_template_owned(*name, source)
                .with_context(|| format!("template {origin} does not parse"))?;
        }
        Ok(Templates {
            environment,
            fingerprint: hasher.finalize().to_hex().to_string(),
        })
    }

    fn render(&self, name: &str, context: &impl Serialize) -> anyhow::Result<Vec<u8>> {
        Ok(self.render_text(name, context)?.into_bytes())
    }

    /// A named template as text ending with a line break.
    pub(crate) fn render_text(
        &self,
        name: &str,
        context: &impl Serialize,
    ) -> anyhow::Result<String> {
        let template = self.environment.get_template(name)?;
        let mut text = template
            .render(Value::from(Serde(context)))
            .with_context(|| format!("template {name} failed to render"))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// A one-line template given as text (a digest subject), unescaped.
    pub(crate) fn render_line(
        &self,
        source: &str,
        context: &impl Serialize,
    ) -> anyhow::Result<String> {
        let text = self
            .environment
            .render_str(source, Value::from(Serde(context)))
            .with_context(|| format!("template {source:?} failed to render"))?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The page of one item.
    pub fn article(
        &self,
        config: &Config,
        stored: &StoredItem,
        sibling: Option<&str>,
    ) -> anyhow::Result<Vec<u8>> {
        let lang = stored.item.lang;
        let (sibling_lang, sibling_label) = match lang {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        };
        let context = ArticleContext {
            site: site(config, lang),
            item: item(config, stored),
            sibling_url: sibling.map(|id| page_url(config, id)),
            sibling_lang,
            sibling_label,
        };
        self.render("article.html", &context)
    }

    /// One language's index page, listing the feed's items.
    pub fn index(&self, input: &FeedInput) -> anyhow::Result<Vec<u8>> {
        let items: Vec<ItemContext> = input
            .entries
            .iter()
            .map(|entry: &Entry| item(input.config, entry.stored))
            .collect();
        let context = IndexContext {
            site: site(input.config, input.lang),
            items,
        };
        self.render("index.html", &context)
    }

    /// The home page, linking every feed with autodiscovery links.
    pub fn home(&self, config: &Config) -> anyhow::Result<Vec<u8>> {
        let opml_url = config
            .base_url
            .join("feeds.opml")
            .map(String::from)
            .unwrap_or_default();
        let context = HomeContext {
            sites: sites(config),
            opml_url,
        };
        self.render("home.html", &context)
    }

    /// The OPML list of the feeds, for importing into a reader.
    pub fn opml(&self, config: &Config) -> anyhow::Result<Vec<u8>> {
        let context = HomeContext {
            sites: sites(config),
            opml_url: String::new(),
        };
        self.render("feeds.opml", &context)
    }
}

fn sites(config: &Config) -> [SiteContext<'_>; 2] {
    [site(config, Lang::Zh), site(config, Lang::En)]
}

fn site(config: &Config, lang: Lang) -> SiteContext<'_> {
    let input = FeedInput {
        config,
        lang,
        variant: lang.as_str(),
        entries: Vec::new(),
    };
    SiteContext {
        lang: lang.as_str(),
        title: input.title(),
        description: input.description(),
        home_url: input.home_url(),
        atom_url: input.feed_url("atom.xml"),
        rss_url: input.feed_url("rss.xml"),
        json_url: input.feed_url("feed.json"),
    }
}

pub(crate) fn item<'a>(config: &Config, stored: &'a StoredItem) -> ItemContext<'a> {
    let published = utc(stored.item.published);
    ItemContext {
        id: &stored.id,
        lang: stored.item.tag.as_str(),
        title: &stored.item.title,
        summary: &stored.item.summary,
        paragraphs: &stored.item.paragraphs,
        url: page_url(config, &stored.id),
        published_iso: published.to_rfc3339(),
        published_date: published
            .with_timezone(&config.timezone)
            .format("%Y-%m-%d")
            .to_string(),
        source: stored.item.source.as_deref(),
        keywords: &stored.item.keywords,
    }
}
