//! One article file → an [`Article`] or a [`Rejection`]: read with a size limit, decode,
//! format. The only I/O is reading the one file; the file is never changed.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::decode::{self, Rejection};
use crate::formatter::{self, Article};

/// An article with what decoding learnt about its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub encoding: &'static str,
    pub article: Article,
}

/// Why reading a file failed: the file is unusable as an article (`Rejected`), or the
/// disk would not let us read it (`Io`), which may pass.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Turns one file's bytes into an article. Rejects bytes that do not decode and text
/// that yields no item in either language.
pub fn ingest_bytes(bytes: &[u8], max_bytes: u64) -> Result<Ingested, Rejection> {
    let decoded = decode::decode(bytes, max_bytes)?;
    let mut article = formatter::format(&decoded.text);
    if article.is_empty() {
        return Err(Rejection::NoText);
    }
    let mut notes = decoded.notes;
    notes.append(&mut article.notes);
    article.notes = notes;
    Ok(Ingested {
        encoding: decoded.encoding,
        article,
    })
}

/// Reads and ingests one file, never reading more than `max_bytes + 1` bytes of it.
pub fn ingest_file(path: &Path, max_bytes: u64) -> Result<Ingested, IngestError> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(Rejection::NotRegularFile.into());
    }
    match read_limited(path, max_bytes)? {
        Some(bytes) => Ok(ingest_bytes(&bytes, max_bytes)?),
        None => Err(Rejection::TooLarge {
            size: std::fs::metadata(path)?.len(),
            limit: max_bytes,
        }
        .into()),
    }
}

/// A file's bytes, or `None` when it is larger than `max_bytes`: then it is not read at
/// all (or, if it grew while being read, not past `max_bytes + 1` bytes).
pub fn read_limited(path: &Path, max_bytes: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max_bytes).then_some(bytes))
}
