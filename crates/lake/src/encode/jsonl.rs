//! gzip JSON Lines: raw records exactly as received, and dead-letter envelopes.
//!
//! A raw line is the record's bytes followed by `\n`, nothing else, so the archive is
//! byte-exact. That is only unambiguous when a record contains no `\n`: valid compact
//! JSON never does (a newline inside a string must be escaped), but pretty-printed
//! JSON or garbage can. The writer therefore never puts such a record on a raw line:
//! it goes to `errors/archiver/unframeable/` inside a dead-letter envelope, whose
//! `payload_base64` keeps the bytes exact (see `item.rs`). Envelopes are serialised
//! by serde_json, which escapes every control character, so they are always one line.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flowline_model::DeadLetter;

use crate::error::LakeError;

/// An incremental gzip JSON Lines writer.
pub struct JsonLinesGz {
    gz: GzEncoder<Vec<u8>>,
    lines: usize,
}

impl JsonLinesGz {
    /// `level` 0..=9; 6 is gzip's default and a good size/speed balance for JSON.
    pub fn new(level: u32, capacity: usize) -> Self {
        JsonLinesGz {
            gz: GzEncoder::new(Vec::with_capacity(capacity), Compression::new(level.min(9))),
            lines: 0,
        }
    }

    /// Appends one line. `line` must not contain `\n` (checked: an error, not a split).
    pub fn push(&mut self, line: &[u8]) -> Result<(), LakeError> {
        if line.contains(&b'\n') {
            return Err(LakeError::encode("JSON Lines", "a line contains a newline"));
        }
        self.gz
            .write_all(line)
            .and_then(|()| self.gz.write_all(b"\n"))
            .map_err(|e| LakeError::encode("JSON Lines", e))?;
        self.lines += 1;
        Ok(())
    }

    pub fn lines(&self) -> usize {
        self.lines
    }

    pub fn finish(self) -> Result<Bytes, LakeError> {
        self.gz
            .finish()
            .map(Bytes::from)
            .map_err(|e| LakeError::encode("JSON Lines", e))
    }
}

/// Envelopes as gzip JSON Lines.
pub fn encode_dead_letters(letters: &[DeadLetter], level: u32) -> Result<Bytes, LakeError> {
    let mut w = JsonLinesGz::new(level, letters.len() * 256);
    let mut line = Vec::with_capacity(1024);
    for d in letters {
        line.clear();
        serde_json::to_writer(&mut line, d).map_err(|e| LakeError::encode("dead letters", e))?;
        w.push(&line)?;
    }
    w.finish()
}

/// The lines of a gzip JSON Lines object (without their `\n`).
pub fn decode_jsonl_gz(bytes: &[u8]) -> Result<Vec<Vec<u8>>, LakeError> {
    let mut text = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut text)
        .map_err(|e| LakeError::encode("JSON Lines", e))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.last() != Some(&b'\n') {
        return Err(LakeError::encode(
            "JSON Lines",
            "last line is not terminated",
        ));
    }
    text.pop();
    Ok(text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect())
}
