//! OpenNebula templates as oned holds them: an ordered list of single (`NAME = "value"`) and
//! vector (`NAME = [ A = "x", B = "y" ]`) attributes with upper-cased names. [`Template::parse`]
//! reads the text syntax oned accepts (template_parser.l), which is what [`super::raw`] writes;
//! the fake uses it to hold what it was given, and the domain structs carry it so callers can
//! read attributes such as `ONEFORM` back.

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Attribute {
    Single(String),
    Vector(Vec<(String, String)>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    attributes: Vec<(String, Attribute)>,
}

impl Template {
    /// Parses template text; attribute names are upper-cased as oned does.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parser = Parser { chars: text.chars().collect(), at: 0 };
        let mut template = Template::default();
        while let Some(name) = parser.name()? {
            parser.expect('=')?;
            let value = if parser.eat_blank_then('[') {
                Attribute::Vector(parser.vector()?)
            } else {
                Attribute::Single(parser.value()?)
            };
            template.push(name, value);
        }
        Ok(template)
    }

    pub fn attributes(&self) -> &[(String, Attribute)] {
        &self.attributes
    }

    pub fn push(&mut self, name: impl Into<String>, value: Attribute) {
        self.attributes.push((name.into().to_uppercase(), value));
    }

    /// The first single attribute called `name` (any case).
    pub fn single(&self, name: &str) -> Option<&str> {
        self.all(name).find_map(|a| match a {
            Attribute::Single(v) => Some(v.as_str()),
            Attribute::Vector(_) => None,
        })
    }

    /// Every vector attribute called `name` (any case), in order.
    pub fn vectors<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [(String, String)]> {
        self.all(name).filter_map(|a| match a {
            Attribute::Vector(v) => Some(v.as_slice()),
            Attribute::Single(_) => None,
        })
    }

    /// The first vector attribute called `name`.
    pub fn vector(&self, name: &str) -> Option<&[(String, String)]> {
        self.vectors(name).next()
    }

    /// oned's append update (type 1): attributes of `other` replace those of the same name.
    pub fn merge(&mut self, other: Template) {
        for (name, _) in &other.attributes {
            self.attributes.retain(|(n, _)| n != name);
        }
        self.attributes.extend(other.attributes);
    }

    fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, a)| a)
    }
}

/// A value inside a vector attribute, looked up by name (any case).
pub fn field<'a>(vector: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vector.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// Skips blanks, newlines and `#` comment lines.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.at += 1;
                }
            } else if c.is_whitespace() {
                self.at += 1;
            } else {
                break;
            }
        }
    }

    fn name(&mut self) -> Result<Option<String>, String> {
        self.skip_space();
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.at += 1;
        }
        if start == self.at {
            return match self.peek() {
                None => Ok(None),
                Some(c) => Err(format!("unexpected '{c}' at character {}", self.at)),
            };
        }
        Ok(Some(self.chars[start..self.at].iter().collect()))
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        if self.eat_blank_then(wanted) { Ok(()) } else { Err(format!("expected '{wanted}' at character {}", self.at)) }
    }

    /// Skips blanks (not newlines) and consumes `wanted` if it comes next.
    fn eat_blank_then(&mut self, wanted: char) -> bool {
        let mut at = self.at;
        while self.chars.get(at).is_some_and(|c| *c == ' ' || *c == '\t') {
            at += 1;
        }
        if self.chars.get(at) == Some(&wanted) {
            self.at = at + 1;
            true
        } else {
            false
        }
    }

    /// A quoted string (`\"` stands for a quote), a bare word, or nothing before the line end.
    fn value(&mut self) -> Result<String, String> {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.at += 1;
        }
        if self.peek() == Some('"') {
            self.at += 1;
            let mut text = String::new();
            loop {
                match self.peek() {
                    None => return Err("unterminated quoted value".into()),
                    Some('"') => break,
                    Some('\\') if self.chars.get(self.at + 1) == Some(&'"') => {
                        text.push('"');
                        self.at += 2;
                        continue;
                    }
                    Some(c) => text.push(c),
                }
                self.at += 1;
            }
            self.at += 1;
            return Ok(text);
        }
        let start = self.at;
        while self.peek().is_some_and(|c| !c.is_whitespace() && !"=#,[]".contains(c)) {
            self.at += 1;
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    fn vector(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut fields = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(']') {
                self.at += 1;
                return Ok(fields);
            }
            let name = self.name()?.ok_or("unterminated vector attribute: missing ']'")?;
            self.expect('=')?;
            fields.push((name.to_uppercase(), self.value()?));
            self.skip_space();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(']') => {}
                Some(c) => return Err(format!("expected ',' or ']' but found '{c}'")),
                None => return Err("unterminated vector attribute: missing ']'".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(fields: &[(&str, &str)]) -> Attribute {
        Attribute::Vector(fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn parses_single_vector_bare_empty_and_comment_attributes() {
        let text = "# a comment\nname = \"net (provision_1)\"\nvn_mad=elastic\nEMPTY =\n\
                    ar = [\nsize = \"1\",\n  ipam_mad = \"aws\"\n]\nAR=[SIZE=2]\nq = \"say \\\"hi\\\"\"\n";
        let t = Template::parse(text).unwrap();
        assert_eq!(
            t.attributes(),
            &[
                ("NAME".into(), Attribute::Single("net (provision_1)".into())),
                ("VN_MAD".into(), Attribute::Single("elastic".into())),
                ("EMPTY".into(), Attribute::Single(String::new())),
                ("AR".into(), v(&[("SIZE", "1"), ("IPAM_MAD", "aws")])),
                ("AR".into(), v(&[("SIZE", "2")])),
                ("Q".into(), Attribute::Single("say \"hi\"".into())),
            ]
        );
        assert_eq!(t.single("vn_mad"), Some("elastic"));
        assert_eq!(t.vectors("ar").count(), 2);
        assert_eq!(field(t.vector("AR").unwrap(), "ipam_mad"), Some("aws"));
    }

    #[test]
    fn merge_replaces_attributes_of_the_same_name() {
        let mut t = Template::parse("A = 1\nONEFORM = [ X = 1 ]\nB = 2").unwrap();
        t.merge(Template::parse("oneform = [ y = \"2\" ]\nC = 3").unwrap());
        let names: Vec<&str> = t.attributes().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["A", "B", "ONEFORM", "C"]);
        assert_eq!(t.vector("oneform").unwrap(), &[("Y".into(), "2".into())]);
    }

    #[test]
    fn broken_text_is_refused() {
        assert!(Template::parse("A = \"open").is_err());
        assert!(Template::parse("A = [ B = 1").is_err());
        assert!(Template::parse("= 1").is_err());
        assert!(Template::parse("A 1").is_err());
    }
}
