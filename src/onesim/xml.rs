//! The XML of onesim's answers, written the way oned writes it: elements in the XSD's order,
//! template values in CDATA, empty ID lists as `<HOSTS/>`. Also reads the templates callers
//! send, which oned accepts in two syntaxes: `NAME = "value"` text and `<TEMPLATE>` XML (what
//! OneForm sends for documents and pyone for nested dictionaries).

use std::fmt::{Display, Write as _};

use crate::one::fake::Permissions;
use crate::one::template::{Attribute, Template};
use crate::one::xmlrpc::Element;

/// An XML document being written.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    pub fn open(&mut self, tag: &str) -> &mut Xml {
        let _ = write!(self.0, "<{tag}>");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        let _ = write!(self.0, "</{tag}>");
        self
    }

    /// `<TAG>value</TAG>`, the value escaped.
    pub fn leaf(&mut self, tag: &str, value: impl Display) -> &mut Xml {
        let _ = write!(self.0, "<{tag}>{}</{tag}>", escape(&value.to_string()));
        self
    }

    /// `<TAG><![CDATA[text]]></TAG>`, as oned writes template values.
    pub fn cdata(&mut self, tag: &str, text: &str) -> &mut Xml {
        let _ = write!(self.0, "<{tag}><![CDATA[{}]]></{tag}>", text.replace("]]>", "]]]]><![CDATA[>"));
        self
    }

    /// An `IDS` list: `<TAG><ID>1</ID>…</TAG>`, or `<TAG/>` when empty.
    pub fn ids(&mut self, tag: &str, ids: &[i64]) -> &mut Xml {
        if ids.is_empty() {
            let _ = write!(self.0, "<{tag}/>");
            return self;
        }
        self.open(tag);
        for id in ids {
            self.leaf("ID", id);
        }
        self.close(tag)
    }

    /// An element with no content: `<TAG/>`.
    pub fn empty(&mut self, tag: &str) -> &mut Xml {
        let _ = write!(self.0, "<{tag}/>");
        self
    }

    /// A template as `<TAG>` with one element per attribute; vectors nest one level.
    pub fn template(&mut self, tag: &str, template: &Template) -> &mut Xml {
        if template.attributes().is_empty() {
            return self.empty(tag);
        }
        self.open(tag);
        for (name, value) in template.attributes() {
            match value {
                Attribute::Single(text) => {
                    self.cdata(name, text);
                }
                Attribute::Vector(fields) => {
                    self.open(name);
                    for (field, text) in fields {
                        self.cdata(field, text);
                    }
                    self.close(name);
                }
            }
        }
        self.close(tag)
    }

    /// `<PERMISSIONS>` with its nine bits.
    pub fn permissions(&mut self, permissions: Permissions) -> &mut Xml {
        const NAMES: [&str; 9] =
            ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A", "OTHER_U", "OTHER_M", "OTHER_A"];
        self.open("PERMISSIONS");
        for (name, bit) in NAMES.iter().zip(permissions.0) {
            self.leaf(name, bit);
        }
        self.close("PERMISSIONS")
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A template in either of oned's syntaxes. In XML the root's name does not matter; a child
/// with children of its own is a vector attribute.
pub fn parse_template(text: &str) -> Result<Template, String> {
    if !text.trim_start().starts_with('<') {
        return Template::parse(text);
    }
    let root = Element::parse(text)?;
    let mut template = Template::default();
    for child in &root.children {
        let value = if child.children.is_empty() {
            Attribute::Single(child.text.clone())
        } else {
            Attribute::Vector(child.children.iter().map(|f| (f.name.to_uppercase(), f.text.clone())).collect())
        };
        template.push(child.name.clone(), value);
    }
    Ok(template)
}

/// A template as the text syntax [`Template::parse`] reads back, for the fake's text calls.
pub fn template_text(template: &Template) -> String {
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\\\""));
    let mut text = String::new();
    for (name, value) in template.attributes() {
        match value {
            Attribute::Single(value) => {
                let _ = writeln!(text, "{name} = {}", quote(value));
            }
            Attribute::Vector(fields) => {
                let fields: Vec<String> = fields.iter().map(|(f, v)| format!("{f} = {}", quote(v))).collect();
                let _ = writeln!(text, "{name} = [ {} ]", fields.join(", "));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_read_from_text_or_xml_and_round_trip() {
        let text = Template::parse("NAME = \"a \\\"b\\\"\"\nAR = [ SIZE = 2, IP = \"10.0.0.1\" ]").unwrap();
        let xml = parse_template(
            "<TEMPLATE><NAME><![CDATA[a \"b\"]]></NAME><AR><SIZE>2</SIZE><ip>10.0.0.1</ip></AR></TEMPLATE>",
        )
        .unwrap();
        assert_eq!(text, xml);
        assert_eq!(Template::parse(&template_text(&xml)).unwrap(), xml);
        assert!(parse_template("<TEMPLATE><A>").is_err());
    }

    #[test]
    fn writes_cdata_ids_and_empty_templates_as_oned_does() {
        let template = Template::parse("A = \"x]]>y\"\nV = [ K = 1 ]").unwrap();
        let xml = Xml::default().ids("HOSTS", &[]).ids("VNETS", &[1, 2]).template("TEMPLATE", &template).finish();
        assert_eq!(
            xml,
            "<HOSTS/><VNETS><ID>1</ID><ID>2</ID></VNETS><TEMPLATE><A><![CDATA[x]]]]><![CDATA[>y]]></A>\
             <V><K><![CDATA[1]]></K></V></TEMPLATE>"
        );
        assert_eq!(
            Xml::default().leaf("NAME", "a<b").template("T", &Template::default()).finish(),
            "<NAME>a&lt;b</NAME><T/>"
        );
        let read_back = parse_template(&xml[xml.find("<TEMPLATE>").unwrap()..]).unwrap();
        assert_eq!(read_back, template, "CDATA split around ]]> reads back whole");
    }
}
