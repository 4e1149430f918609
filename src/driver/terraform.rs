//! Reading a driver's Terraform files with a real HCL parser (hcl-rs): `variable` blocks become
//! inputs exactly as OneForm computes them (`driver.rb#tf_inputs`), `locals.validators` becomes
//! their `match` rules, and `outputs.tf` must declare `provisioned_hosts`.
//!
//! OneForm drops every line containing `var.` before parsing, which silently loses any variable
//! attribute that mentions another variable. Parsing properly makes that unnecessary: blocks
//! other than `variable` are simply not looked at, whatever they contain.

use hcl::eval::{Context, Evaluate};
use hcl::{Block, Body, Expression, ObjectKey};
use serde_json::{Map, Value};

use super::input::Input;

/// Parses HCL text; the error carries hcl-rs's line and column.
pub fn parse(source: &str) -> Result<Body, String> {
    check_nesting(source)?;
    hcl::parse(source).map_err(|e| format!("is not valid HCL: {e}"))
}

/// The deepest nesting [`parse`] hands to hcl-rs. Its parser (hcl-edit 0.10) tries the operand
/// after a binary operator twice when that operand fails (once in the operator chain, once as a
/// new chain), so each level of a failing nested object doubles the work: `a = {a*b%{a*b%{…`
/// 30 levels deep (150 bytes) takes hours, and a driver file like that would hang every command
/// that loads the driver. Real driver files nest under 10 levels (`map(object({ d =
/// list(object({…})) }))`); 16 keeps the worst case near 2^16 operand parses, well under a second.
pub const MAX_NESTING: usize = 16;

/// Refuses text nested deeper than [`MAX_NESTING`], counted as the parser will meet it: brackets
/// in code, a quoted string or heredoc as one level, `${`/`%{` inside them as one more, comments
/// skipped. Where unsure (a closing bracket of the wrong kind) it counts deeper, never shallower.
/// One pass over the bytes as a small state machine, which reads best whole.
fn check_nesting(source: &str) -> Result<(), String> {
    #[derive(PartialEq)]
    enum Level<'a> {
        Code(u8),
        Quoted,
        Heredoc(&'a [u8]),
    }
    let bytes = source.as_bytes();
    let line_end = |from: usize| bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| from + n);
    let mut stack: Vec<Level> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let template_start = rest.starts_with(b"${") || rest.starts_with(b"%{");
        match stack.last() {
            Some(Level::Quoted | Level::Heredoc(_)) if rest.starts_with(b"$${") || rest.starts_with(b"%%{") => i += 2,
            Some(Level::Quoted | Level::Heredoc(_)) if template_start => {
                stack.push(Level::Code(b'}'));
                i += 1;
            }
            Some(Level::Quoted) if rest[0] == b'\\' => i += 1,
            Some(Level::Quoted) if rest[0] == b'"' => drop(stack.pop()),
            Some(Level::Heredoc(end)) if i > 0 && bytes[i - 1] == b'\n' => {
                let line = &bytes[i..line_end(i)];
                if line.trim_ascii() == *end {
                    stack.pop();
                    i += line.len().saturating_sub(1);
                }
            }
            Some(Level::Quoted | Level::Heredoc(_)) => {}
            Some(Level::Code(_)) | None => match rest[0] {
                b'#' => i = line_end(i).saturating_sub(1),
                b'/' if rest.starts_with(b"//") => i = line_end(i).saturating_sub(1),
                b'/' if rest.starts_with(b"/*") => {
                    i = bytes[i + 2..].windows(2).position(|w| w == b"*/").map_or(bytes.len(), |n| i + 2 + n + 1);
                }
                b'"' => stack.push(Level::Quoted),
                b'{' => stack.push(Level::Code(b'}')),
                b'[' => stack.push(Level::Code(b']')),
                b'(' => stack.push(Level::Code(b')')),
                closer @ (b'}' | b']' | b')') if stack.last() == Some(&Level::Code(closer)) => drop(stack.pop()),
                b'<' if rest.starts_with(b"<<") => {
                    // `<<EOT` or `<<-EOT` right before the line's end opens a heredoc.
                    let start = if rest.get(2) == Some(&b'-') { 3 } else { 2 };
                    let is_name = |b: &&u8| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-';
                    let name_len = rest[start..].iter().take_while(is_name).count();
                    let after = &rest[start + name_len..];
                    let after = after.strip_prefix(b"\r").unwrap_or(after);
                    if name_len > 0 && !rest[start].is_ascii_digit() && after.first() == Some(&b'\n') {
                        stack.push(Level::Heredoc(&rest[start..start + name_len]));
                        i += start + name_len - 1;
                    }
                }
                _ => {}
            },
        }
        if stack.len() > MAX_NESTING {
            let line = bytes[..i].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(format!(
                "is nested more than {MAX_NESTING} levels deep at line {line} (brackets, strings and `${{`/`%{{` \
                 templates): formwork reads at most {MAX_NESTING} levels, which no driver needs; flatten it"
            ));
        }
        i += 1;
    }
    Ok(())
}

/// The `variable` blocks of a parsed file, in file order, as OneForm inputs with their `match`
/// taken from `validators`.
pub fn inputs(body: &Body, validators: &Map<String, Value>) -> Result<Vec<Input>, String> {
    let mut inputs: Vec<Input> = Vec::new();
    for block in body.blocks().filter(|b| b.identifier.as_str() == "variable") {
        let input = variable_input(block, validators)?;
        if inputs.iter().any(|i| i.name == input.name) {
            return Err(format!("declares variable '{}' twice", input.name));
        }
        inputs.push(input);
    }
    Ok(inputs)
}

fn variable_input(block: &Block, validators: &Map<String, Value>) -> Result<Input, String> {
    let [label] = block.labels.as_slice() else {
        return Err("has a `variable` block without exactly one name label".into());
    };
    let name = label.as_str().to_string();
    let attr = |key: &str| block.body.attributes().find(|a| a.key.as_str() == key).map(|a| &a.expr);
    let eval = |key: &str| -> Result<Option<Value>, String> {
        attr(key)
            .map(|expr| literal(expr).map_err(|e| format!("variable '{name}': `{key}` {e}")))
            .transpose()
            .map(|v| v.filter(|v| !v.is_null()))
    };
    let type_text = attr("type").map(type_text).unwrap_or_default();
    let default = eval("default")?.map(|d| normalize_default(&type_text, d));
    let description = eval("description")?.map(|d| super::input::ruby_to_s(&d));
    let sensitive = match eval("sensitive")? {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(other) => {
            return Err(format!("variable '{name}': `sensitive` must be true or false, not {other}"));
        }
    };
    let match_rule = validators.get(&name).filter(|m| m.as_object().is_none_or(|o| !o.is_empty())).cloned();
    Ok(Input {
        mandatory: Some(default.is_none()),
        name,
        description,
        type_text,
        default,
        sensitive: Some(sensitive),
        match_rule,
        extra: Map::new(),
        compiled: None,
    })
}

/// OneForm's `normalize_variable_type`: a string default of a `number` becomes Ruby's `to_i` of
/// it, and of a `bool` becomes `== "true"` (case-insensitive).
fn normalize_default(type_text: &str, default: Value) -> Value {
    match (type_text, default) {
        ("number", Value::String(s)) => Value::from(ruby_to_i(&s)),
        ("bool", Value::String(s)) => Value::Bool(s.eq_ignore_ascii_case("true")),
        (_, other) => other,
    }
}

/// Ruby's `String#to_i`: leading whitespace, an optional sign, then digits (and `_` between
/// them); anything else ends the number, and no digits at all gives 0.
fn ruby_to_i(s: &str) -> i64 {
    let t = s.trim_start();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let mut n: i64 = 0;
    let mut prev_digit = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                n = n.saturating_mul(10).saturating_add(i64::from(c as u8 - b'0'));
                prev_digit = true;
            }
            '_' if prev_digit => prev_digit = false,
            _ => break,
        }
    }
    sign * n
}

/// Evaluates an expression that must not depend on anything (a default, a validator table).
pub fn literal(expr: &Expression) -> Result<Value, String> {
    check_literal(expr).map_err(|what| format!("must be a literal value, not {what}"))?;
    let value = expr
        .evaluate(&Context::new())
        .map_err(|e| format!("must be a literal value: {}", e.to_string().lines().next().unwrap_or("")))?;
    serde_json::to_value(value).map_err(|e| format!("cannot be represented as JSON: {e}"))
}

/// Refuses anything but data: null, booleans, numbers, strings and heredocs without
/// interpolation, lists and objects of those, and `-`/`!` before one. hcl-rs 0.20 panics while
/// evaluating arithmetic it cannot represent (`1 % 0` always; `1 / 0` and integer overflow in
/// builds with debug assertions) and silently wraps overflow otherwise, and a default or a
/// validator table has no use for operators, conditionals or loops.
fn check_literal(expr: &Expression) -> Result<(), &'static str> {
    match expr {
        Expression::Null | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => Ok(()),
        Expression::Array(items) => items.iter().try_for_each(check_literal),
        Expression::Object(object) => object.iter().try_for_each(|(key, value)| {
            if let ObjectKey::Expression(key) = key {
                check_literal(key)?;
            }
            check_literal(value)
        }),
        Expression::Parenthesis(inner) => check_literal(inner),
        Expression::Operation(operation) => match operation.as_ref() {
            hcl::Operation::Unary(unary) => check_literal(&unary.expr),
            hcl::Operation::Binary(_) => Err("an operation"),
        },
        Expression::TemplateExpr(template) => match hcl::Template::from_expr(template) {
            Ok(t) if t.elements().iter().all(|e| matches!(e, hcl::template::Element::Literal(_))) => Ok(()),
            _ => Err("a template with `${...}` or `%{...}`"),
        },
        Expression::Variable(_) | Expression::Traversal(_) => Err("a reference"),
        Expression::FuncCall(_) => Err("a function call"),
        Expression::Conditional(_) => Err("a conditional"),
        Expression::ForExpr(_) => Err("a `for` expression"),
        // hcl-rs may add kinds of expression; none of them is data.
        _ => Err("an expression"),
    }
}

/// The type expression as text, lower-cased, as OneForm shows it (`map(string)`).
pub fn type_text(expr: &Expression) -> String {
    let mut out = String::new();
    write_type(expr, &mut out);
    out.to_ascii_lowercase()
}

fn write_type(expr: &Expression, out: &mut String) {
    match expr {
        Expression::Variable(v) => out.push_str(v.as_str()),
        Expression::String(s) => out.push_str(s),
        Expression::FuncCall(call) => {
            out.push_str(call.name.name.as_str());
            out.push('(');
            write_list(call.args.iter(), out);
            out.push(')');
        }
        Expression::Array(items) => {
            out.push('[');
            write_list(items.iter(), out);
            out.push(']');
        }
        Expression::Object(object) => {
            out.push('{');
            for (i, (key, value)) in object.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match key {
                    ObjectKey::Identifier(id) => out.push_str(id.as_str()),
                    ObjectKey::Expression(e) => write_type(e, out),
                    _ => out.push_str(&key.to_string()),
                }
                out.push_str(" = ");
                write_type(value, out);
            }
            out.push('}');
        }
        Expression::Parenthesis(inner) => write_type(inner, out),
        other => out.push_str(hcl::format::to_string(other).unwrap_or_default().trim()),
    }
}

fn write_list<'a>(items: impl Iterator<Item = &'a Expression>, out: &mut String) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_type(item, out);
    }
}

/// `locals { validators = { ... } }` from validators.tf; several `locals` blocks are allowed (as
/// in Terraform), but `validators` may be defined only once.
pub fn validators(body: &Body) -> Result<Map<String, Value>, String> {
    let mut found: Option<Map<String, Value>> = None;
    for block in body.blocks().filter(|b| b.identifier.as_str() == "locals") {
        for attr in block.body.attributes().filter(|a| a.key.as_str() == "validators") {
            if found.is_some() {
                return Err("defines `locals.validators` more than once".into());
            }
            let value = literal(&attr.expr).map_err(|e| format!("`locals.validators` {e}"))?;
            let Value::Object(map) = value else {
                return Err("`locals.validators` must be a map keyed by variable name".into());
            };
            found = Some(map);
        }
    }
    Ok(found.unwrap_or_default())
}

/// Whether the file declares `output "<name>"`.
pub fn has_output(body: &Body, name: &str) -> bool {
    body.blocks()
        .filter(|b| b.identifier.as_str() == "output")
        .any(|b| b.labels.first().is_some_and(|l| l.as_str() == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs_of(src: &str) -> Vec<Value> {
        let body = parse(src).unwrap();
        inputs(&body, &Map::new()).unwrap().iter().map(|i| serde_json::to_value(i).unwrap()).collect()
    }

    #[test]
    fn variables_become_oneform_inputs() {
        let got = inputs_of(
            r#"
            variable "oneform_hosts" {
              description = "Number of instances to create"
              type        = number
              default     = 1
            }
            variable "token" {
              type      = string
              sensitive = true
            }
            variable "oneform_tags" {
              type    = map(string)
              default = {}
            }
            "#,
        );
        assert_eq!(
            got,
            vec![
                json!({"name": "oneform_hosts", "description": "Number of instances to create", "type": "number", "default": 1, "mandatory": false, "sensitive": false}),
                json!({"name": "token", "type": "string", "mandatory": true, "sensitive": true}),
                json!({"name": "oneform_tags", "type": "map(string)", "default": {}, "mandatory": false, "sensitive": false}),
            ]
        );
    }

    #[test]
    fn string_defaults_are_coerced_like_oneform() {
        let got = inputs_of(
            r#"
            variable "n" {
              type = number
              default = " 12_5abc"
            }
            variable "junk" {
              type = number
              default = "abc"
            }
            variable "b" {
              type = bool
              default = "TRUE"
            }
            variable "c" {
              type = bool
              default = "yes"
            }
            "#,
        );
        let defaults: Vec<&Value> = got.iter().map(|i| &i["default"]).collect();
        assert_eq!(defaults, vec![&json!(125), &json!(0), &json!(true), &json!(false)]);
    }

    #[test]
    fn lines_mentioning_var_do_not_lose_attributes() {
        // OneForm's line filter would drop this whole description and the validation block.
        let got = inputs_of(
            r#"
            variable "cidr" {
              description = "Used as var.cidr in main.tf"
              type = string
              default = "10.0.0.0/24"
              validation {
                condition     = can(cidrhost(var.cidr, 0))
                error_message = "must be a CIDR"
              }
            }
            provider "sim" {
              region = var.region
            }
            "#,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["description"], json!("Used as var.cidr in main.tf"));
        assert_eq!(got[0]["default"], json!("10.0.0.0/24"));
    }

    #[test]
    fn complex_types_and_heredocs() {
        let got = inputs_of(
            r#"
            variable "disks" {
              type = list(object({ name = string, size = optional(number, 10) }))
              default = [{ name = "a", size = 1 }]
            }
            variable "pair" {
              type = tuple([string, NUMBER])
            }
            variable "motd" {
              type = string
              default = <<-EOT
                hello
                world
              EOT
            }
            variable "null_default" {
              type = string
              default = null
            }
            "#,
        );
        assert_eq!(got[0]["type"], json!("list(object({name = string, size = optional(number, 10)}))"));
        assert_eq!(got[0]["default"], json!([{"name": "a", "size": 1}]));
        assert_eq!(got[1]["type"], json!("tuple([string, number])"));
        assert_eq!(got[2]["default"], json!("hello\nworld\n"));
        assert_eq!(got[3]["mandatory"], json!(true));
        assert!(got[3].get("default").is_none());
    }

    #[test]
    fn validators_merge_across_locals_blocks() {
        let body = parse(
            r#"
            locals { region_list = ["a"] }
            locals {
              validators = {
                zone = { type = "map", grouped_by = "region", values = { a = ["a1", "a2"] } }
                type = { type = "list", values = ["small", "large"] }
              }
            }
            "#,
        )
        .unwrap();
        let v = validators(&body).unwrap();
        assert_eq!(v["zone"]["grouped_by"], json!("region"));
        assert_eq!(v["type"]["values"], json!(["small", "large"]));
        let twice = parse("locals { validators = {} }\nlocals { validators = {} }").unwrap();
        assert!(validators(&twice).unwrap_err().contains("more than once"));
    }

    #[test]
    fn non_literal_defaults_are_refused_with_the_variable_named() {
        let body = parse("variable \"x\" {\n type = string\n default = local.y\n}").unwrap();
        let err = inputs(&body, &Map::new()).unwrap_err();
        assert!(err.contains("variable 'x': `default` must be a literal value, not a reference"), "{err}");
    }

    #[test]
    fn operations_are_refused_before_hcl_rs_evaluates_them() {
        // hcl-rs 0.20 panics on `1 % 0` (and on `2 / 0` with debug assertions): found by the
        // hcl_inputs fuzz target in a validators.tf.
        for expr in ["1 % 0", "2 / 0", "18446744073709551615 + 1", "[{ min = 2 / 0 }]", "\"${1 % 0}\"", "-(1 % 0)"] {
            let body = parse(&format!("variable \"x\" {{\n type = number\n default = {expr}\n}}")).unwrap();
            let err = inputs(&body, &Map::new()).unwrap_err();
            assert!(err.contains("`default` must be a literal value, not a"), "{expr}: {err}");
        }
        let body = parse("locals {\n validators = { n = { type = \"number\", values = { min = 1 % 0 } } }\n}").unwrap();
        assert!(validators(&body).unwrap_err().contains("must be a literal value, not an operation"));
        let data =
            "variable \"x\" {\n type = any\n default = [-1, !true, (2.5), { \"k\" = <<EOT\nno $${x}\nEOT\n }]\n}";
        let got = inputs_of(data);
        assert_eq!(got[0]["default"], json!([-1, false, 2.5, {"k": "no ${x}\n"}]));
    }

    #[test]
    fn duplicate_variables_are_refused() {
        let body = parse("variable \"x\" {\n type = string\n}\nvariable \"x\" {\n type = number\n}").unwrap();
        assert!(inputs(&body, &Map::new()).unwrap_err().contains("'x' twice"));
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_before_the_parser_can_take_exponential_time() {
        // Handed to hcl-rs, this would take 2^40 operand parses before failing.
        let deep = format!("a = {}\n", "{a*b%".repeat(40));
        let err = parse(&deep).unwrap_err();
        assert!(err.contains("nested more than 16 levels deep at line 1"), "{err}");
        let in_templates = format!("a = \"{}\"", "${\"".repeat(9));
        assert!(parse(&in_templates).unwrap_err().contains("16 levels"), "each string and template counts");
        let within = format!("a = {}1{}", "[".repeat(15), "]".repeat(15));
        assert!(parse(&within).is_ok(), "15 brackets in an attribute are read");
    }

    #[test]
    fn brackets_in_strings_heredocs_and_comments_do_not_count_as_nesting() {
        let text = "# {{{{{{{{{{{{{{{{{{\n/* [[[[[[[[[[[[[[[[[[[ */\n\
                    a = \"{{{{{{{{{{{{{{{{{{{ \\\" $${ %%{\"\n\
                    b = <<-EOT\n  ((((((((((((((((((( ${ \"}\" }\n  EOT\n\
                    c = { d = [ { e = \"]]]]\" } ] } // }}}}\n";
        let body = parse(text).unwrap();
        assert_eq!(body.attributes().count(), 3);
        let unterminated = format!("a = \"{}", "}".repeat(40));
        assert!(parse(&unterminated).unwrap_err().contains("is not valid HCL"), "closers in a string pop nothing");
    }

    #[test]
    fn outputs_are_found_by_label() {
        let body = parse("output \"provisioned_hosts\" {\n value = []\n}").unwrap();
        assert!(has_output(&body, "provisioned_hosts"));
        assert!(!has_output(&body, "hosts"));
    }
}
