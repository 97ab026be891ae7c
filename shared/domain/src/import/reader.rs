//! Reading an uploaded file into records, one part at a time: CSV (RFC 4180, UTF-8 with or without
//! a byte-order mark, any one-byte delimiter) or NDJSON. A part may end inside a record; that record
//! is carried (as bytes) to the next part, and read whole there. Each record keeps its row number as a
//! spreadsheet shows it (a CSV header is row 1; an NDJSON line is its line number), and a record
//! that cannot be read (not UTF-8, the wrong number of cells, not a JSON object) becomes a problem
//! of its row instead of failing the file.

use super::Format;

/// A record as stored between its upload and its import: its text (a CSV record, re-read with the
/// job's delimiter; an NDJSON line), or why it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRow {
    pub row: i64,
    pub record: Result<String, RowProblem>,
}

/// A row that cannot be imported as a whole, or one cell of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

impl RowProblem {
    pub fn of_row(code: &str, message: impl Into<String>) -> Self {
        Self {
            column: None,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn of_column(column: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            column: Some(column.to_owned()),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Where reading the file stands between two parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The CSV header, once read.
    pub header: Option<Vec<String>>,
    /// The next row's number.
    pub next_row: i64,
    /// The bytes of a record the last part ended inside.
    pub tail: Vec<u8>,
    /// Whether a byte has been read yet (a byte-order mark is skipped only at the very start).
    pub started: bool,
}

/// What one part added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRead {
    pub rows: Vec<ReadRow>,
    pub progress: Progress,
}

/// A file that cannot be read at all: a CSV without a header, or a header that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileProblem(pub String);

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads `part` after `progress`; `last` when no part follows (the carried record then ends the
/// file). `delimiter` is a CSV job's.
pub fn read_part(
    format: Format,
    delimiter: u8,
    progress: &Progress,
    part: &[u8],
    last: bool,
) -> Result<PartRead, FileProblem> {
    let mut data = Vec::with_capacity(progress.tail.len() + part.len());
    data.extend_from_slice(&progress.tail);
    data.extend_from_slice(part);
    let mut start = 0;
    if !progress.started && data.starts_with(BOM) {
        start = BOM.len();
    }
    let mut next = Progress {
        header: progress.header.clone(),
        next_row: progress.next_row.max(1),
        tail: Vec::new(),
        started: progress.started || !data.is_empty(),
    };
    let records = match format {
        Format::Csv => csv_records(&data[start..], delimiter),
        Format::Ndjson => line_records(&data[start..]),
    };
    // Unless this is the last part, the last record may be cut: it waits for the next part.
    let (complete, cut) = match (last, records.split_last()) {
        (false, Some((cut, complete))) => (complete, Some(cut)),
        _ => (&records[..], None),
    };
    if cut.is_some() {
        // From the end of the last complete record: blank lines before the cut one count on.
        let after = complete.last().map_or(0, |record| record.after);
        next.tail = data[start + after..].to_vec();
    }
    let mut rows = Vec::with_capacity(complete.len());
    for record in complete {
        let bytes = &data[start + record.start..start + record.end];
        if format == Format::Csv && next.header.is_none() {
            next.header = Some(header(bytes, delimiter)?);
            next.next_row += 1;
            continue;
        }
        let row = next.next_row + record.blank_before;
        next.next_row = row + 1;
        let record = match (format, std::str::from_utf8(bytes)) {
            (_, Err(_)) => Err(RowProblem::of_row(
                "bad_encoding",
                "the row is not valid UTF-8",
            )),
            (Format::Csv, Ok(text)) => {
                let expected = next.header.as_ref().map_or(0, Vec::len);
                match cells(text, delimiter) {
                    Ok(found) if found.len() == expected => Ok(text.to_owned()),
                    Ok(found) => Err(RowProblem::of_row(
                        "wrong_column_count",
                        format!("{} cells where the header has {expected}", found.len()),
                    )),
                    Err(problem) => Err(problem),
                }
            }
            (Format::Ndjson, Ok(text)) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(_)) => Ok(text.to_owned()),
                Ok(_) => Err(RowProblem::of_row(
                    "invalid_json",
                    "the line is not a JSON object",
                )),
                Err(error) => Err(RowProblem::of_row(
                    "invalid_json",
                    format!("the line is not JSON: {error}"),
                )),
            },
        };
        rows.push(ReadRow { row, record });
    }
    if last && format == Format::Csv && next.header.is_none() {
        return Err(FileProblem("the file has no header line".into()));
    }
    Ok(PartRead {
        rows,
        progress: next,
    })
}

/// The cells of one CSV record read back from its stored text.
pub fn cells(text: &str, delimiter: u8) -> Result<Vec<String>, RowProblem> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    match reader.records().next() {
        None => Ok(Vec::new()),
        Some(Ok(record)) => Ok(record.iter().map(unneutralise).collect()),
        Some(Err(error)) => Err(RowProblem::of_row(
            "unreadable",
            format!("the row cannot be read: {error}"),
        )),
    }
}

/// A cell as written before an export neutralised it for spreadsheets ([`crate::csv`]): a leading
/// `'` before a character a formula starts with is removed.
fn unneutralise(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_owned(),
        _ => cell.to_owned(),
    }
}

fn header(bytes: &[u8], delimiter: u8) -> Result<Vec<String>, FileProblem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| FileProblem("the header line is not valid UTF-8".into()))?;
    let names: Vec<String> = cells(text, delimiter)
        .map_err(|problem| FileProblem(problem.message))?
        .into_iter()
        .map(|name| name.trim().to_owned())
        .collect();
    if names.iter().all(String::is_empty) {
        return Err(FileProblem("the header line names no column".into()));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = names
        .iter()
        .filter(|name| !name.is_empty())
        .find(|name| !seen.insert(name.to_lowercase()))
    {
        return Err(FileProblem(format!(
            "the header names the column `{twice}` twice"
        )));
    }
    Ok(names)
}

/// The delimiter of a CSV file whose first line is `first`: the most frequent of `,`, `;`, tab
/// and `|` outside quotes, a comma when none occurs.
pub fn detect_delimiter(first: &[u8]) -> u8 {
    let line = first
        .split(|byte| *byte == b'\n')
        .next()
        .unwrap_or_default();
    let mut quoted = false;
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    for byte in line {
        if *byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(at) = candidates.iter().position(|c| c == byte) {
                counts[at] += 1;
            }
        }
    }
    let (best, count) = counts
        .iter()
        .enumerate()
        .max_by_key(|(at, count)| (**count, std::cmp::Reverse(*at)))
        .unwrap_or((0, &0));
    if *count == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// A record's bytes within the data (without its line terminator), where the next one may start,
/// and how many blank lines came before it.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    after: usize,
    blank_before: i64,
}

/// The records of CSV `data`, each without its line terminator. Blank lines are no records.
fn csv_records(data: &[u8], delimiter: u8) -> Vec<Span> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(data);
    let mut spans = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut start = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let end = reader.position().byte() as usize;
                // A record's position may start at the line break that ended the one before.
                let mut begins = record
                    .position()
                    .map_or(start, |position| position.byte() as usize);
                while begins < end && matches!(data[begins], b'\r' | b'\n') {
                    begins += 1;
                }
                spans.push(Span {
                    start: begins,
                    end: trim_terminator(data, begins, end),
                    after: end,
                    blank_before: 0,
                });
                start = end;
            }
            Ok(false) => break,
            // Only invalid UTF-8 in a string record fails; byte records always read.
            Err(_) => break,
        }
    }
    spans
}

/// `end` moved back over a trailing `\n` or `\r\n`.
fn trim_terminator(data: &[u8], start: usize, mut end: usize) -> usize {
    if end > start && data.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    if end > start && data.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    end
}

/// The lines of NDJSON `data`, each without its terminator; a blank line is no record but counts
/// as a line (an error's line number is the file's).
fn line_records(data: &[u8]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut start = 0;
    let mut skipped = 0;
    let mut push = |start: usize, after: usize, skipped: &mut i64| {
        let end = trim_terminator(data, start, after);
        if data[start..end].iter().all(u8::is_ascii_whitespace) {
            *skipped += 1;
            return;
        }
        spans.push(Span {
            start,
            end,
            after,
            blank_before: std::mem::take(skipped),
        });
    };
    for (at, byte) in data.iter().enumerate() {
        if *byte == b'\n' {
            push(start, at + 1, &mut skipped);
            start = at + 1;
        }
    }
    if start < data.len() {
        push(start, data.len(), &mut skipped);
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(format: Format, parts: &[&[u8]]) -> (Vec<ReadRow>, Progress) {
        let delimiter = detect_delimiter(parts[0]);
        let mut progress = Progress::default();
        let mut rows = Vec::new();
        for (at, part) in parts.iter().enumerate() {
            let read =
                read_part(format, delimiter, &progress, part, at + 1 == parts.len()).unwrap();
            rows.extend(read.rows);
            progress = read.progress;
        }
        (rows, progress)
    }

    #[test]
    fn a_csv_record_cut_by_a_part_is_read_whole_with_the_next() {
        let file = "\u{feff}name,email\r\nAda,\"ada@example.com\"\r\n\"Grace\nHopper\",g@example.com\r\nBob,b@example.com";
        let whole = read_all(Format::Csv, &[file.as_bytes()]);
        for cut in 1..file.len() {
            if !file.is_char_boundary(cut) {
                continue;
            }
            let (a, b) = file.as_bytes().split_at(cut);
            assert_eq!(read_all(Format::Csv, &[a, b]), whole, "cut at {cut}");
        }
        let (rows, progress) = whole;
        assert_eq!(progress.header.unwrap(), ["name", "email"]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].row, 2);
        assert_eq!(
            rows[1].record.as_deref(),
            Ok("\"Grace\nHopper\",g@example.com")
        );
        assert_eq!(
            cells(rows[1].record.as_ref().unwrap(), b',').unwrap(),
            ["Grace\nHopper", "g@example.com"]
        );
        assert_eq!(rows[2].row, 4);
    }

    #[test]
    fn bad_rows_are_problems_of_their_own_row() {
        let file = b"a;b\n1;2\n1;2;3\n\xff;2\n'=x;'+1\n";
        let (rows, _) = read_all(Format::Csv, &[file]);
        assert_eq!(rows.len(), 4);
        assert!(rows[0].record.is_ok());
        assert_eq!(
            rows[1].record.as_ref().unwrap_err().code,
            "wrong_column_count"
        );
        assert_eq!(rows[2].record.as_ref().unwrap_err().code, "bad_encoding");
        assert_eq!((rows[1].row, rows[2].row, rows[3].row), (3, 4, 5));
        assert_eq!(
            cells(rows[3].record.as_ref().unwrap(), b';').unwrap(),
            ["=x", "+1"]
        );
    }

    #[test]
    fn ndjson_lines_keep_their_line_numbers() {
        let file = b"{\"a\": 1}\n\n[1]\nnot json\r\n{\"b\": 2}";
        let (rows, _) = read_all(Format::Ndjson, &[&file[..5], &file[5..]]);
        let numbers: Vec<i64> = rows.iter().map(|r| r.row).collect();
        assert_eq!(numbers, [1, 3, 4, 5]);
        assert!(rows[0].record.is_ok() && rows[3].record.is_ok());
        assert_eq!(rows[1].record.as_ref().unwrap_err().code, "invalid_json");
        assert_eq!(rows[2].record.as_ref().unwrap_err().code, "invalid_json");
    }

    #[test]
    fn the_delimiter_is_the_commonest_outside_quotes() {
        assert_eq!(detect_delimiter(b"a;b;\"c,d,e\"\n1,2"), b';');
        assert_eq!(detect_delimiter(b"a\tb\n"), b'\t');
        assert_eq!(detect_delimiter(b"single\n"), b',');
    }

    #[test]
    fn a_file_without_a_header_is_refused() {
        let problem = read_part(Format::Csv, b',', &Progress::default(), b"", true);
        assert!(problem.is_err());
    }
}
