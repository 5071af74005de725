//! What a spreadsheet export looks like: its delimiter (`,`, `;` as Dutch Excel saves CSV,
//! or tab), its encoding (UTF-8 with or without BOM, or Windows-1252 as Excel's "CSV
//! (gescheiden door lijstscheidingsteken)" writes it), its dates (`YYYY-MM-DD` or
//! `DD-MM-YYYY`), and `.xlsx` workbooks read through calamine into the same checks.

use std::fmt;
use std::io::{self, Cursor, Read};

use zicht_model::DateFormat;

/// A file's text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte order mark.
    Utf8,
    /// Windows-1252 ("ANSI" in Excel; read for Latin-1 too, which it extends).
    Windows1252,
    /// UTF-16 with its byte order mark, as Excel saves "Unicode-tekst" (tab-separated).
    Utf16,
}

impl TextEncoding {
    /// Parses `utf-8`, `cp1252` (also `windows-1252`, `ansi`, `latin1`, `iso-8859-1`).
    pub fn parse(text: &str) -> Option<TextEncoding> {
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(TextEncoding::Utf8),
            "cp1252" | "windows-1252" | "ansi" | "latin1" | "latin-1" | "iso-8859-1" => {
                Some(TextEncoding::Windows1252)
            }
            "utf-16" | "utf16" | "unicode" => Some(TextEncoding::Utf16),
            _ => None,
        }
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Windows1252 => "Windows-1252",
            TextEncoding::Utf16 => "UTF-16",
        })
    }
}

/// How to read a file; `None` means detect it from the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialect {
    /// The field delimiter: `,`, `;` or tab.
    pub delimiter: Option<u8>,
    /// The text encoding.
    pub encoding: Option<TextEncoding>,
    /// How dates are written.
    pub date_format: DateFormat,
    /// The sheet of an `.xlsx` workbook (default: the first).
    pub sheet: Option<String>,
}

/// Parses a delimiter option: `,`, `;`, `tab` (or a tab character).
pub fn parse_delimiter(text: &str) -> Option<u8> {
    match text {
        "," | "comma" => Some(b','),
        ";" | "semicolon" | "puntkomma" => Some(b';'),
        "\t" | "tab" | "\\t" => Some(b'\t'),
        _ => None,
    }
}

/// What the file turned out to be, stated in the import's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// The delimiter read with.
    pub delimiter: u8,
    /// The encoding read with.
    pub encoding: TextEncoding,
    /// Whether the encoding was detected (not given).
    pub detected: bool,
    /// Whether the file is an `.xlsx` workbook (then delimiter and encoding are moot), and
    /// its sheet.
    pub sheet: Option<String>,
}

/// A delimiter as people name it.
pub(crate) fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b';' => "`;`",
        b'\t' => "tab",
        _ => "`,`",
    }
}

impl fmt::Display for Sniffed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sheet {
            Some(sheet) => write!(f, "xlsx sheet `{sheet}`"),
            None => write!(
                f,
                "{}-separated, {}",
                delimiter_name(self.delimiter),
                self.encoding
            ),
        }
    }
}

/// Bytes read ahead to detect the encoding and the delimiter.
const HEAD: usize = 64 * 1024;

/// Reads the head of `reader`, detects what the dialect leaves open, and returns a reader of
/// the whole file as UTF-8 (a BOM, if any, is left for the header check to drop).
pub fn open(
    mut reader: impl Read + Send + 'static,
    dialect: &Dialect,
) -> io::Result<(Box<dyn Read + Send>, Sniffed)> {
    let mut head = Vec::with_capacity(HEAD);
    (&mut reader).take(HEAD as u64).read_to_end(&mut head)?;
    let encoding = dialect.encoding.unwrap_or_else(|| detect_encoding(&head));
    let delimiter = dialect.delimiter.unwrap_or_else(|| match encoding {
        TextEncoding::Utf16 => detect_delimiter(first_line(utf16_head(&head).as_bytes())),
        _ => detect_delimiter(first_line(&head)),
    });
    let sniffed = Sniffed {
        delimiter,
        encoding,
        detected: dialect.encoding.is_none(),
        sheet: None,
    };
    let whole = Cursor::new(head).chain(reader);
    let text: Box<dyn Read + Send> = match encoding {
        TextEncoding::Utf8 => Box::new(whole),
        TextEncoding::Windows1252 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(whole),
        ),
        // The byte order mark says which UTF-16 (little-endian without one, as Windows
        // writes it) and is dropped.
        TextEncoding::Utf16 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::UTF_16LE))
                .bom_override(true)
                .strip_bom(true)
                .build(whole),
        ),
    };
    Ok((text, sniffed))
}

/// The head of a UTF-16 file as text (for the delimiter).
fn utf16_head(head: &[u8]) -> String {
    let (text, _) = encoding_rs::Encoding::for_bom(head)
        .map_or(encoding_rs::UTF_16LE, |(encoding, _)| encoding)
        .decode_with_bom_removal(head);
    text.into_owned()
}

/// UTF-16 when the head starts with its byte order mark; UTF-8 when the head is UTF-8 (a
/// character cut at the head's end does not count); else Windows-1252: a file of plain ASCII
/// is both.
fn detect_encoding(head: &[u8]) -> TextEncoding {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return TextEncoding::Utf16;
    }
    match std::str::from_utf8(head) {
        Ok(_) => TextEncoding::Utf8,
        Err(error) if error.error_len().is_none() => TextEncoding::Utf8,
        Err(_) => TextEncoding::Windows1252,
    }
}

/// The header line (up to the first line break).
fn first_line(head: &[u8]) -> &[u8] {
    let end = head
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(head.len());
    &head[..end]
}

/// The delimiter that splits the header line most often, outside quotes; `,` when none does.
fn detect_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let (best, count) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &count)| (count, usize::MAX - i))
        .map_or((0, 0), |(i, &c)| (i, c));
    if count == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// Why a workbook could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    /// Not a workbook calamine can open.
    #[error("not a readable .xlsx workbook ({0})")]
    Open(String),
    /// The named sheet is not in the workbook.
    #[error("the workbook has no sheet `{wanted}`; its sheets are: {sheets}")]
    NoSheet {
        /// The sheet asked for.
        wanted: String,
        /// The workbook's sheets.
        sheets: String,
    },
}

/// Whether `bytes` start like a zip archive, as an `.xlsx` workbook does.
pub fn is_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Reads a sheet of an `.xlsx` workbook (the first, or `sheet`) as UTF-8 CSV, one line per
/// sheet row, so a problem's line is the row number Excel shows. Dates become
/// `YYYY-MM-DD`, times of day `HH:MM`, whole numbers lose their `.0`. A workbook is read
/// whole: Excel holds at most 1,048,576 rows.
pub fn workbook_as_csv(
    bytes: Vec<u8>,
    sheet: Option<&str>,
) -> Result<(Vec<u8>, String), WorkbookError> {
    use calamine::{Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| WorkbookError::Open(e.to_string()))?;
    let names = workbook.sheet_names();
    let name = match sheet {
        None => names
            .first()
            .cloned()
            .ok_or_else(|| WorkbookError::NoSheet {
                wanted: "(first)".to_owned(),
                sheets: "none".to_owned(),
            })?,
        Some(wanted) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| WorkbookError::NoSheet {
                wanted: wanted.to_owned(),
                sheets: names.join(", "),
            })?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| WorkbookError::Open(e.to_string()))?;
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let first_row = range.start().map_or(0, |(row, _)| row);
    let first_column = range.start().map_or(0, |(_, column)| column) as usize;
    let mut text = String::new();
    // Rows above the first filled one, so lines match Excel's row numbers.
    let mut lines = String::new();
    for _ in 0..first_row {
        lines.push('\n');
    }
    let mut bytes = lines.into_bytes();
    for row in range.rows() {
        let mut fields: Vec<String> = vec![String::new(); first_column];
        for cell in row {
            text.clear();
            cell_text(cell, &mut text);
            fields.push(text.clone());
        }
        out.write_record(&fields)
            .map_err(|e| WorkbookError::Open(e.to_string()))?;
    }
    let written = out
        .into_inner()
        .map_err(|e| WorkbookError::Open(e.to_string()))?;
    bytes.extend(written);
    Ok((bytes, name))
}

/// A cell as the CSV import reads it.
fn cell_text(cell: &calamine::Data, out: &mut String) {
    use calamine::{Data, DataType};
    use std::fmt::Write;
    match cell {
        Data::Empty => {}
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => out.push_str(s),
        Data::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Data::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
            let _ = write!(out, "{}", *x as i64);
        }
        Data::Float(x) => {
            let _ = write!(out, "{x}");
        }
        Data::Bool(b) => out.push_str(if *b { "ja" } else { "nee" }),
        Data::DateTime(moment) => match cell.as_datetime() {
            // A time of day alone is a fraction of a day in Excel.
            Some(at) if moment.as_f64() < 1.0 => {
                let _ = write!(out, "{}", at.format("%H:%M"));
            }
            Some(at) if at.time() == chrono::NaiveTime::MIN => {
                let _ = write!(out, "{}", at.format("%Y-%m-%d"));
            }
            Some(at) => {
                let _ = write!(out, "{}", at.format("%Y-%m-%dT%H:%M:%S"));
            }
            None => {
                let _ = write!(out, "{}", moment.as_f64());
            }
        },
        Data::Error(error) => {
            let _ = write!(out, "#{error:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_delimiters_and_encodings() {
        assert_eq!(detect_delimiter(b"a;b;c"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"a,b,c"), b',');
        assert_eq!(detect_delimiter(b"\"a;b\",c"), b',');
        assert_eq!(detect_delimiter(b"abc"), b',');
        assert_eq!(detect_encoding("Súdwest".as_bytes()), TextEncoding::Utf8);
        assert_eq!(detect_encoding(b"S\xfadwest"), TextEncoding::Windows1252);
        // A character cut at the end of the head is still UTF-8.
        assert_eq!(detect_encoding(&"ú".as_bytes()[..1]), TextEncoding::Utf8);
    }

    #[test]
    fn utf_16_as_excel_saves_unicode_text() {
        let text = "a\tb\nS\u{fa}dwest\t\u{20ac}\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let (mut reader, sniffed) = open(Cursor::new(bytes), &Dialect::default()).unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!(out, text);
        assert_eq!(sniffed.to_string(), "tab-separated, UTF-16");
    }

    #[test]
    fn windows_1252_is_read_as_utf_8() {
        let (mut text, sniffed) = open(
            Cursor::new(b"a;b\nS\xfadwest;\x80\n".to_vec()),
            &Dialect::default(),
        )
        .unwrap();
        let mut out = String::new();
        text.read_to_string(&mut out).unwrap();
        assert_eq!(out, "a;b\nSúdwest;€\n");
        assert_eq!(sniffed.encoding, TextEncoding::Windows1252);
        assert_eq!(sniffed.to_string(), "`;`-separated, Windows-1252");
    }
}
