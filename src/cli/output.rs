//! How commands print: data on stdout as aligned tables for people or JSON for scripts,
//! warnings on stderr. What prints is already redacted by the service.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

/// The chosen output mode.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value).map_err(std::io::Error::from)?;
        writeln!(stdout)?;
        Ok(())
    }

    /// Prints text on stdout.
    pub fn text(&self, text: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            writeln!(stdout)?;
        }
        Ok(())
    }

    pub fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Renders rows under headers with no borders: columns left-aligned, two spaces apart, each
/// as wide as its widest cell (display width), trailing spaces trimmed.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_header(headers.to_vec()).add_rows(rows.iter().cloned());
    let last = table.column_iter().count().saturating_sub(1);
    for column in table.column_iter_mut() {
        let gap = if column.index == last { 0 } else { COLUMN_GAP };
        column.set_padding((0, gap));
    }
    table.trim_fmt() + "\n"
}

/// Spaces between two columns of a [`table`].
const COLUMN_GAP: u16 = 2;

/// A value as one table cell.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let t = table(&["NAME", "STATE"], &[vec!["sim".into(), "ENABLED".into()], vec!["onprem".into(), "".into()]]);
        assert_eq!(t, "NAME    STATE\nsim     ENABLED\nonprem\n");
        assert_eq!(table(&["ID", "NAME"], &[]), "ID  NAME\n");
    }
}
