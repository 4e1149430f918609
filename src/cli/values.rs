//! Reading a values file (provider connection values, provision input values): JSON first,
//! then YAML, from a path or `-` for stdin.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::driver::deployment::yaml_to_json;

/// Largest values file read: values are small; anything bigger is a mistake.
const MAX_BYTES: u64 = 1024 * 1024;

pub fn read_values(path: &Path) -> anyhow::Result<Value> {
    let (text, shown) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().take(MAX_BYTES + 1).read_to_string(&mut text).context("cannot read values from stdin")?;
        (text, "stdin".to_string())
    } else {
        let shown = format!("'{}'", path.display());
        let file = std::fs::File::open(path).with_context(|| format!("cannot read values file {shown}"))?;
        let mut text = String::new();
        file.take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read values file {shown}"))?;
        (text, shown)
    };
    if text.len() as u64 > MAX_BYTES {
        anyhow::bail!(
            "values in {shown} are larger than {MAX_BYTES} bytes; values files are small maps of input to value"
        );
    }
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return Ok(value);
    }
    yaml_to_json(&text).map_err(|e| anyhow::anyhow!("values in {shown} are neither JSON nor YAML: {e}"))
}
