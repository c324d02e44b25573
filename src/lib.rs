//! twinfeed turns a folder of scraped bilingual (Chinese + English) news articles into
//! separate Chinese and English feeds.
//!
//! The pipeline is `inbox → decode → formatter → store → render → publish`. Built so
//! far: [`decode`] (bytes → text), [`formatter`] (text → article) and [`ingest`], which
//! joins them for one file. See ARCHITECTURE.md for the whole map.

pub mod build;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod digest;
pub mod formatter;
pub mod inbox;
pub mod ingest;
pub mod logging;
pub mod publish;
pub mod reconcile;
pub mod render;
pub mod scan;
pub mod serve;
pub mod store;
pub mod watch;
