//! `--format '<template>'` on `list` and `show`: formwork's own user-facing templates are
//! Handlebars in strict mode (a misspelt field is an error, not an empty string) without HTML
//! escaping. A list renders the template once per item, one line each.

use handlebars::{Handlebars, no_escape};
use serde_json::Value;

/// Renders `template` for each value.
pub fn render(template: &str, values: &[Value]) -> anyhow::Result<String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(no_escape);
    hb.register_template_string("format", template)
        .map_err(|e| anyhow::anyhow!("--format is not a valid Handlebars template: {e}"))?;
    let mut out = String::new();
    for value in values {
        let line = hb.render("format", value).map_err(|e| {
            anyhow::anyhow!(
                "--format cannot be rendered: {e}; fields come from the --json output (e.g. {{{{id}}}} {{{{state}}}})"
            )
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_and_unescaped() {
        let rows = [json!({"id": 1, "name": "a<b>"}), json!({"id": 2, "name": "c&d"})];
        assert_eq!(render("{{id}} {{name}}", &rows).unwrap(), "1 a<b>\n2 c&d\n");
        assert!(render("{{nme}}", &rows).unwrap_err().to_string().contains("cannot be rendered"));
        assert!(render("{{#if}}", &rows).unwrap_err().to_string().contains("not a valid Handlebars template"));
    }
}
