//! Fuzzes decode + format: arbitrary bytes never panic, and an accepted article always
//! passes `Article::check` (no empty paragraph, no XML-forbidden character, every
//! paragraph in its item's language).

#![no_main]

use libfuzzer_sys::fuzz_target;
use twinfeed::decode::DEFAULT_MAX_BYTES;
use twinfeed::ingest::ingest_bytes;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(ingested) = ingest_bytes(bytes, DEFAULT_MAX_BYTES) {
        assert!(!ingested.article.is_empty());
        if let Err(problem) = ingested.article.check() {
            panic!("{problem}");
        }
    }
});
