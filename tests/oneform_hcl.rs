//! Every built-in driver's HCL files that OneForm reads (`provider.tf`, `variables.tf`,
//! `validators.tf`) are read by OneForm's own HCL reader, and `validators.tf` means to it what
//! it means to formwork. OneForm's `driver.rb` drops every line holding `var.`, then hands
//! the text to the `hcl_parser` gem (0.2.2), which rewrites comment lines and unquoted
//! `type`/`default` values and parses with `rhcl`, an HCL 1 grammar far narrower than HCL 2:
//! no commas between an object's items (so no one-line `{ min = 1, max = 50 }`), keys are
//! bare words (a quoted `"eu-west" = …` is a parse error), list items are numbers or strings
//! only, and strings are read raw up to the next `"` (no escapes: `"\\."` stays two
//! backslashes). A file it cannot parse is read by OneForm as having no validators and no
//! variables. [`rhcl`] models that reader (lexer and grammar as in rhcl's `parse.y`); its own
//! tests check that it refuses what rhcl refuses.

mod common;

use common::{Home, builtin_drivers};
use serde_json::{Map, Value, json};

/// What OneForm reads from a driver's HCL file, or why it reads nothing.
fn oneform_reads(text: &str) -> Result<Value, String> {
    // driver.rb: `content.lines.reject { |line| line.include?('var.') }`.
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("var.")).collect();
    let code = hcl_parser_code(&kept)?;
    if code.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(json!({}));
    }
    rhcl::parse(&code)
}

/// hcl_parser's `Loader#code`: comment lines emptied, unquoted `type`/`default` values quoted.
/// Its rewrite of variables with `object(` or `"any` types is not modelled: such a line fails
/// the check, to be modelled here first.
fn hcl_parser_code(lines: &[&str]) -> Result<String, String> {
    let comment = regex::Regex::new(r"^(^|\s)#").unwrap();
    let assigns = regex::Regex::new(r"(type|default)\s*=").unwrap();
    let quoted = regex::Regex::new(r#"(type|default)\s*=\s*['"]([a-zA-Z0-9()]+)["']"#).unwrap();
    let unquoted = regex::Regex::new(r"(type|default)\s*=\s*([a-zA-Z0-9()]+)").unwrap();
    let complex = regex::Regex::new(r#"object\(|=\s*"any"#).unwrap();
    let mut out = Vec::new();
    for line in lines {
        if complex.is_match(line) {
            return Err(format!("hcl_parser rewrites variables with complex types, which this model lacks: {line}"));
        }
        out.push(if comment.is_match(line) {
            "# ".to_string()
        } else if !assigns.is_match(line) || quoted.is_match(line) {
            line.to_string()
        } else if let Some(m) = unquoted.captures(line) {
            format!("{} = \"{}\"", &m[1], &m[2])
        } else {
            line.to_string()
        });
    }
    Ok(out.join("\n"))
}

/// rhcl 0.1.0 (`lib/rhcl/parse.y`): its lexer and its grammar.
mod rhcl {
    use serde_json::{Map, Value};

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Number(Value),
        Comma,
        Equal,
        LeftBracket,
        RightBracket,
        LeftBrace,
        RightBrace,
        Str(String),
        Ident(String),
        Bool(bool),
    }

    /// `Rhcl::Parse#scan`: each token in the order its alternatives are tried.
    fn lex(src: &str) -> Result<Vec<Tok>, String> {
        let number = regex::Regex::new(r"^-?\d+(\.\d+)?").unwrap();
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(c) = rest.chars().next() {
            if c.is_whitespace() {
                rest = &rest[c.len_utf8()..];
            } else if c == '#' || rest.starts_with("//") {
                rest = rest.find('\n').map_or("", |n| &rest[n..]);
            } else if rest.starts_with("/*") {
                rest = rest.find("*/").map_or("", |n| &rest[n + 2..]);
            } else if c == '/' {
                return Err(format!("comment expected at {rest:.20?}"));
            } else if let Some(m) = number.find(rest) {
                let text = m.as_str();
                let value = if text.contains('.') {
                    serde_json::Number::from_f64(text.parse().unwrap()).map(Value::Number).unwrap()
                } else {
                    Value::from(text.parse::<i64>().unwrap())
                };
                out.push(Tok::Number(value));
                rest = &rest[text.len()..];
            } else if let Some(tok) = match c {
                ',' => Some(Tok::Comma),
                '=' => Some(Tok::Equal),
                '[' => Some(Tok::LeftBracket),
                ']' => Some(Tok::RightBracket),
                '{' => Some(Tok::LeftBrace),
                '}' => Some(Tok::RightBrace),
                _ => None,
            } {
                out.push(tok);
                rest = &rest[1..];
            } else if c == '"' {
                // Up to the next quote, raw: no escape is read.
                let end = rest[1..].find('"').map_or(rest.len(), |n| n + 1);
                out.push(Tok::Str(rest[1..end].to_string()));
                rest = rest.get(end + 1..).unwrap_or("");
            } else {
                // A word runs up to the next blank, whatever it holds.
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..end];
                out.push(match word {
                    "true" | "on" | "yes" => Tok::Bool(true),
                    "false" | "off" | "no" => Tok::Bool(false),
                    _ => Tok::Ident(word.to_string()),
                });
                rest = &rest[end..];
            }
        }
        Ok(out)
    }

    /// The parsed document, as Ruby hashes become JSON objects.
    pub fn parse(src: &str) -> Result<Value, String> {
        let toks = lex(src)?;
        let mut p = Parser { toks, at: 0 };
        let doc = p.objectlist()?;
        match p.peek() {
            None => Ok(doc),
            Some(t) => Err(format!("parse error on value: {t:?}")),
        }
    }

    struct Parser {
        toks: Vec<Tok>,
        at: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Tok> {
            self.toks.get(self.at)
        }

        fn next(&mut self) -> Result<Tok, String> {
            let t = self.toks.get(self.at).cloned().ok_or("parse error on value: $end")?;
            self.at += 1;
            Ok(t)
        }

        fn expect(&mut self, want: Tok) -> Result<(), String> {
            match self.next()? {
                t if t == want => Ok(()),
                t => Err(format!("parse error on value: {t:?} (expected {want:?})")),
            }
        }

        /// `objectlist : objectitem | objectlist objectitem` (items deep-merged).
        fn objectlist(&mut self) -> Result<Value, String> {
            let mut out = Value::Object(Map::new());
            loop {
                deep_merge(&mut out, self.objectitem()?);
                if matches!(self.peek(), None | Some(Tok::RightBrace)) {
                    return Ok(out);
                }
            }
        }

        /// `IDENTIFIER EQUAL (number | BOOL | STRING | object | list) | block`.
        fn objectitem(&mut self) -> Result<Value, String> {
            if let (Some(Tok::Ident(key)), Some(Tok::Equal)) = (self.peek().cloned(), self.toks.get(self.at + 1)) {
                self.at += 2;
                let value = match self.peek() {
                    Some(Tok::LeftBrace) => self.object()?,
                    Some(Tok::LeftBracket) => self.list()?,
                    _ => match self.next()? {
                        Tok::Number(n) => n,
                        Tok::Bool(b) => Value::Bool(b),
                        Tok::Str(s) => Value::String(s),
                        t => return Err(format!("parse error on value: {t:?} (after `{key} =`)")),
                    },
                };
                return Ok(single(key, value));
            }
            self.block()
        }

        /// `block : blockId object | blockId block`, `blockId : IDENTIFIER | STRING`.
        fn block(&mut self) -> Result<Value, String> {
            let id = match self.next()? {
                Tok::Ident(s) | Tok::Str(s) => s,
                t => return Err(format!("parse error on value: {t:?}")),
            };
            let inner = match self.peek() {
                Some(Tok::LeftBrace) => self.object()?,
                _ => self.block()?,
            };
            Ok(single(id, inner))
        }

        /// `object : LEFTBRACE objectlist RIGHTBRACE | LEFTBRACE RIGHTBRACE`.
        fn object(&mut self) -> Result<Value, String> {
            self.expect(Tok::LeftBrace)?;
            if self.peek() == Some(&Tok::RightBrace) {
                self.at += 1;
                return Ok(Value::Object(Map::new()));
            }
            let inner = self.objectlist()?;
            self.expect(Tok::RightBrace)?;
            Ok(inner)
        }

        /// `list : [ listitems ] | [ ]`, `listitems` comma-separated numbers and strings.
        fn list(&mut self) -> Result<Value, String> {
            self.expect(Tok::LeftBracket)?;
            let mut items = Vec::new();
            if self.peek() == Some(&Tok::RightBracket) {
                self.at += 1;
                return Ok(Value::Array(items));
            }
            loop {
                items.push(match self.next()? {
                    Tok::Number(n) => n,
                    Tok::Str(s) => Value::String(s),
                    t => return Err(format!("parse error on value: {t:?} (in a list)")),
                });
                match self.next()? {
                    Tok::Comma => continue,
                    Tok::RightBracket => return Ok(Value::Array(items)),
                    t => return Err(format!("parse error on value: {t:?} (in a list)")),
                }
            }
        }
    }

    fn single(key: String, value: Value) -> Value {
        let mut map = Map::new();
        map.insert(key, value);
        Value::Object(map)
    }

    fn deep_merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(existing) if existing.is_object() && v.is_object() => deep_merge(existing, v),
                        _ => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
}

#[test]
fn the_model_refuses_what_rhcl_refuses_and_reads_what_it_reads() {
    // OneForm's own dummy driver's shape: nested objects on several lines, bare keys.
    let dummy = "locals {\n  # a comment\n  validators = {\n    hosts = {\n      type   = \"number\"\n      values = {\n        min = 1\n        max = 10\n      }\n    }\n    zone = {\n      grouped_by = \"region\"\n      values = {\n        region-1 = [\"zone-1\", \"zone-2\"]\n      }\n    }\n  }\n}\n";
    let read = oneform_reads(dummy).unwrap();
    assert_eq!(read["locals"]["validators"]["hosts"], json!({"type": "number", "values": {"min": 1, "max": 10}}));
    assert_eq!(read["locals"]["validators"]["zone"]["values"], json!({"region-1": ["zone-1", "zone-2"]}));
    for refused in [
        "locals {\n  v = { min = 1, max = 50 }\n}\n",
        "locals {\n  v = {\n    \"eu-west\" = [\"a\"]\n  }\n}\n",
        "locals {\n  v = [\"a\", \"b\",]\n}\n",
        "locals {\n  v = [{ a = 1 }]\n}\n",
        "locals {\n  v = { min = 1 }\n}\n",
    ] {
        let one_line_object = refused.contains("{ min = 1 }");
        match oneform_reads(refused) {
            // A one-item object on one line is read: only a comma between items is refused.
            Ok(v) if one_line_object => assert_eq!(v["locals"]["v"], json!({"min": 1})),
            Ok(v) => panic!("rhcl refuses {refused:?}, the model read {v}"),
            Err(_) => assert!(!one_line_object),
        }
    }
    // Strings are raw, and unquoted types are quoted by hcl_parser.
    let read = oneform_reads("variable \"x\" {\n  type = number\n  default = 2\n  r = \"a\\\\.b\"\n}\n").unwrap();
    assert_eq!(read["variable"]["x"], json!({"type": "number", "default": "2", "r": "a\\\\.b"}));
    // Lines with `var.` are gone before parsing.
    assert_eq!(oneform_reads("provider \"p\" {\n  token = var.t\n}\n").unwrap(), json!({"provider": {"p": {}}}));
}

/// Every `match` formwork serves for a driver's Terraform inputs, by input name.
fn served_matches(driver: &str) -> Map<String, Value> {
    let home = Home::with_builtin();
    let shown = home.run(&["--json", "driver", "show", driver]).ok().json();
    let inputs = shown["connection"].as_array().into_iter().chain(shown["user_inputs"].as_array()).flatten();
    inputs
        .filter(|i| i.get("match").is_some())
        .map(|i| (i["name"].as_str().unwrap().to_string(), i["match"].clone()))
        .collect()
}

#[test]
fn every_builtin_drivers_hcl_is_read_by_oneform_as_formwork_reads_it() {
    let mut checked = 0;
    for entry in std::fs::read_dir(builtin_drivers()).unwrap() {
        let dir = entry.unwrap().path();
        let driver = dir.file_name().unwrap().to_str().unwrap().to_string();
        for file in ["provider.tf", "variables.tf", "validators.tf"] {
            let path = dir.join("terraform").join(file);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let read = oneform_reads(&text).unwrap_or_else(|e| {
                panic!("OneForm's HCL reader cannot read {} (OneForm would see nothing in it): {e}", path.display())
            });
            checked += 1;
            if file != "validators.tf" {
                continue;
            }
            let validators = read["locals"]["validators"].as_object().cloned().unwrap_or_default();
            assert!(!validators.is_empty(), "OneForm reads no validators from {}", path.display());
            let served = served_matches(&driver);
            assert_eq!(
                served,
                validators,
                "{}: formwork's rules (left) differ from what OneForm reads (right)",
                path.display()
            );
        }
    }
    assert!(checked >= 4, "the built-in drivers' HCL files must be found ({checked})");
}
