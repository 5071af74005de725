//! How output is written, for every command that prints results: the format asked for, and
//! the quoting of a CSV field. A leaf: results and records both print through it.

/// Output format of `zicht query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a footer.
    Table,
    /// One JSON object.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// A CSV field as RFC 4180 quotes it: in double quotes (doubled inside) when it holds a
/// comma, a quote or a line break.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
