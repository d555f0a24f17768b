//! Replay input: CSV (with header) or JSON Lines of any raw event type,
//! validated line by line so that a bad line is reported with its number and
//! the run goes on.

use std::io::{BufRead, Read};
use std::path::Path;

use csv::StringRecord;
use flowline_model::{Event, ModelError, ParseConfig, StreamKind};

use crate::error::DatagenError;
use crate::tabular::row_to_json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    JsonLines,
    Csv,
}

impl ReplayFormat {
    /// From the file extension: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &Path) -> Option<ReplayFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(ReplayFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(ReplayFormat::JsonLines),
            _ => None,
        }
    }
}

/// A validated input line, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayRecord {
    pub event: Event,
    /// Canonical JSON of the event (times in UTC with milliseconds), which
    /// is what gets sent.
    pub data: Vec<u8>,
}

impl ReplayRecord {
    pub fn stream(&self) -> StreamKind {
        self.event.kind()
    }

    pub fn partition_key(&self) -> &str {
        self.event.partition_key()
    }
}

/// `(line_number, record or error)`; line numbers start at 1. An I/O error
/// ends the iteration after it is yielded.
pub type ReplayItem = (u64, Result<ReplayRecord, DatagenError>);

/// Reads `input` in `format`. JSON Lines may mix event types (detected per
/// line); a CSV file holds one type, detected from its header, and fails
/// here when the header names none.
pub fn replay<R: BufRead + 'static>(
    input: R,
    format: ReplayFormat,
    parser: ParseConfig,
) -> Result<Box<dyn Iterator<Item = ReplayItem>>, DatagenError> {
    Ok(match format {
        ReplayFormat::JsonLines => Box::new(JsonLines {
            input,
            parser,
            line: 0,
            buf: Vec::new(),
            done: false,
        }),
        ReplayFormat::Csv => Box::new(CsvRows::new(input, parser)?),
    })
}

fn accept(
    parser: &ParseConfig,
    kind: Option<StreamKind>,
    bytes: &[u8],
) -> Result<ReplayRecord, DatagenError> {
    let event = match kind {
        Some(k) => parser.parse_event(k, bytes)?,
        None => parser.parse_any_event(bytes)?,
    };
    let data = event.to_json();
    Ok(ReplayRecord { event, data })
}

struct JsonLines<R> {
    input: R,
    parser: ParseConfig,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = ReplayItem;

    fn next(&mut self) -> Option<ReplayItem> {
        while !self.done {
            self.buf.clear();
            // Read at most one byte past the limit per line: a huge line is
            // reported as oversized without being held in memory whole.
            let limit = self.parser.max_record_bytes as u64 + 2;
            let read = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buf);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some((self.line + 1, Err(e.into())));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            if !self.buf.ends_with(b"\n") && n as u64 == limit {
                let size = self.skip_rest_of_line(n);
                let err = ModelError::Oversized {
                    size,
                    max: self.parser.max_record_bytes,
                };
                return Some((self.line, Err(err.into())));
            }
            let line = self.buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            return Some((self.line, accept(&self.parser, None, line)));
        }
        None
    }
}

impl<R: BufRead> JsonLines<R> {
    /// Discards the rest of an over-long line; returns its full length.
    fn skip_rest_of_line(&mut self, mut size: usize) -> usize {
        loop {
            let (consumed, found) = match self.input.fill_buf() {
                Ok([]) | Err(_) => return size,
                Ok(chunk) => match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                },
            };
            self.input.consume(consumed);
            size += consumed;
            if found {
                return size - 1;
            }
        }
    }
}

struct CsvRows<R> {
    reader: csv::Reader<R>,
    headers: StringRecord,
    kind: StreamKind,
    parser: ParseConfig,
    row: StringRecord,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    fn new(input: R, parser: ParseConfig) -> Result<Self, DatagenError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let headers = reader.headers()?.clone();
        let kind =
            StreamKind::detect(|name| headers.iter().any(|h| h == name)).ok_or_else(|| {
                DatagenError::Csv(
                    "line 1: header names no known event type (sale_id, customer_id or address_id)"
                        .into(),
                )
            })?;
        Ok(CsvRows {
            reader,
            headers,
            kind,
            parser,
            row: StringRecord::new(),
            done: false,
        })
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = ReplayItem;

    fn next(&mut self) -> Option<ReplayItem> {
        if self.done {
            return None;
        }
        let before = self.reader.position().line();
        match self.reader.read_record(&mut self.row) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.row.position().map_or(before, |p| p.line());
                let json = row_to_json(self.kind.fields(), &self.headers, &self.row);
                if json.len() > self.parser.max_record_bytes {
                    let err = ModelError::Oversized {
                        size: json.len(),
                        max: self.parser.max_record_bytes,
                    };
                    return Some((line, Err(err.into())));
                }
                Some((line, accept(&self.parser, Some(self.kind), &json)))
            }
            Err(e) => {
                let line = e.position().map_or(before, |p| p.line());
                let err = DatagenError::from(e);
                if matches!(err, DatagenError::Io(_)) {
                    self.done = true;
                }
                Some((line, Err(err)))
            }
        }
    }
}
