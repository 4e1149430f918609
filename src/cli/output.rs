//! How commands print: data on stdout as aligned tables for people or JSON for scripts,
//! warnings on stderr. Sensitive values are replaced by `__redacted__` before anything prints.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use crate::driver::Input;

/// OneForm's placeholder for hidden values.
pub use crate::driver::input::REDACTED;

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

/// Renders rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A copy of inputs whose sensitive defaults are hidden.
pub fn redact_inputs(inputs: &[Input]) -> Vec<Input> {
    inputs
        .iter()
        .map(|i| {
            let mut i = i.clone();
            if i.is_sensitive() && i.default.is_some() {
                i.default = Some(Value::String(REDACTED.into()));
            }
            i
        })
        .collect()
}

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
    }
}
