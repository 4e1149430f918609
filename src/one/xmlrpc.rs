//! The XML-RPC codec: [`Value`]s to and from `<methodCall>` / `<methodResponse>` documents, as
//! the spec (xmlrpc.com/spec) defines them, plus [`Element`], the small XML tree the decoder and
//! the client's OpenNebula document parsing both read. The client sends with
//! [`encode_call`] and reads with [`decode_response`]; onesim, the simulated oned, does the
//! reverse with [`decode_call`], [`encode_response`] and [`encode_fault`].
//!
//! Decoding never panics: anything that is not well-formed XML-RPC is [`Error::Malformed`],
//! saying what was wrong; a `<fault>` answer is [`Error::Fault`].

use std::fmt::Write as _;

use quick_xml::events::{BytesRef, Event};

/// An XML-RPC value. `Int` covers `int`, `i4` and `i8`; an untyped `<value>text</value>` is a
/// `String`. `Struct` keeps its members in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
    Nil,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed XML-RPC document: {0}")]
    Malformed(String),
    #[error("XML-RPC fault {code}: {message}")]
    Fault { code: i64, message: String },
}

/// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 256;

/// `<methodCall>` for `method` with `params`.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    escape_into(&mut xml, method);
    xml.push_str("</methodName><params>");
    for param in params {
        xml.push_str("<param>");
        encode_value(&mut xml, param);
        xml.push_str("</param>");
    }
    xml.push_str("</params></methodCall>\n");
    xml
}

/// A successful `<methodResponse>` carrying `value`.
pub fn encode_response(value: &Value) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    encode_value(&mut xml, value);
    xml.push_str("</param></params></methodResponse>\n");
    xml
}

/// A `<fault>` answer with the spec's `faultCode` / `faultString` struct.
pub fn encode_fault(code: i64, message: &str) -> String {
    let fault = Value::Struct(vec![
        ("faultCode".to_owned(), Value::Int(code)),
        ("faultString".to_owned(), Value::String(message.to_owned())),
    ]);
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<methodResponse><fault>");
    encode_value(&mut xml, &fault);
    xml.push_str("</fault></methodResponse>\n");
    xml
}

/// A `<methodCall>` as a server receives it: the method name and its parameters.
pub fn decode_call(xml: &str) -> Result<(String, Vec<Value>), Error> {
    let root = Element::parse(xml).map_err(Error::Malformed)?;
    root.expect_name("methodCall")?;
    let method = root.required("methodName")?.leaf_text()?.trim().to_owned();
    if method.is_empty() {
        return malformed("<methodName> is empty");
    }
    let params = match root.child("params") {
        Some(params) => decode_params(params)?,
        None => Vec::new(),
    };
    Ok((method, params))
}

/// The value of a `<methodResponse>`; a `<fault>` becomes [`Error::Fault`].
pub fn decode_response(xml: &str) -> Result<Value, Error> {
    let root = Element::parse(xml).map_err(Error::Malformed)?;
    root.expect_name("methodResponse")?;
    if let Some(fault) = root.child("fault") {
        return Err(decode_fault(fault)?);
    }
    let mut params = decode_params(root.required("params")?)?;
    if params.len() != 1 {
        return malformed(format!("a response carries one <param>, this one has {}", params.len()));
    }
    Ok(params.remove(0))
}

fn decode_fault(fault: &Element) -> Result<Error, Error> {
    let Value::Struct(members) = decode_value(fault.only_child()?, 0)? else {
        return malformed("<fault> does not hold a struct");
    };
    let (mut code, mut message) = (None, None);
    for (name, value) in members {
        match (name.as_str(), value) {
            ("faultCode", Value::Int(number)) => code = Some(number),
            ("faultString", Value::String(text)) => message = Some(text),
            _ => {}
        }
    }
    match (code, message) {
        (Some(code), Some(message)) => Ok(Error::Fault { code, message }),
        _ => malformed("<fault> lacks an int faultCode or a string faultString"),
    }
}

fn decode_params(params: &Element) -> Result<Vec<Value>, Error> {
    params.leaf_free()?;
    let mut values = Vec::new();
    for param in &params.children {
        param.expect_name("param")?;
        values.push(decode_value(param.only_child()?, 0)?);
    }
    Ok(values)
}

/// One `<value>`. One arm per XML-RPC type, so it stays whole.
fn decode_value(value: &Element, depth: usize) -> Result<Value, Error> {
    value.expect_name("value")?;
    if depth > MAX_DEPTH {
        return malformed(format!("values nested deeper than {MAX_DEPTH} levels"));
    }
    if value.children.is_empty() {
        return Ok(Value::String(value.text.clone()));
    }
    let typed = value.only_child()?;
    match typed.name.as_str() {
        "int" | "i4" | "i8" => {
            let text = typed.leaf_text()?.trim();
            text.parse()
                .map(Value::Int)
                .or_else(|_| malformed(format!("<{}> holds '{text}', not an integer", typed.name)))
        }
        "boolean" => match typed.leaf_text()?.trim() {
            "1" | "true" => Ok(Value::Bool(true)),
            "0" | "false" => Ok(Value::Bool(false)),
            other => malformed(format!("<boolean> holds '{other}', not 0 or 1")),
        },
        "string" => Ok(Value::String(typed.leaf_text()?.to_owned())),
        "double" => {
            let text = typed.leaf_text()?.trim();
            text.parse().map(Value::Double).or_else(|_| malformed(format!("<double> holds '{text}', not a number")))
        }
        "nil" => match typed.leaf_text()?.trim() {
            "" => Ok(Value::Nil),
            other => malformed(format!("<nil> holds '{other}'; it must be empty")),
        },
        "array" => {
            let data = typed.only_child()?;
            data.expect_name("data")?;
            data.leaf_free()?;
            data.children.iter().map(|item| decode_value(item, depth + 1)).collect::<Result<_, _>>().map(Value::Array)
        }
        "struct" => {
            typed.leaf_free()?;
            typed
                .children
                .iter()
                .map(|member| decode_member(member, depth))
                .collect::<Result<_, _>>()
                .map(Value::Struct)
        }
        other => malformed(format!("<value> holds <{other}>, which is no XML-RPC type")),
    }
}

fn decode_member(member: &Element, depth: usize) -> Result<(String, Value), Error> {
    member.expect_name("member")?;
    member.leaf_free()?;
    match member.children.as_slice() {
        [name, value] if name.name == "name" => Ok((name.leaf_text()?.to_owned(), decode_value(value, depth + 1)?)),
        _ => malformed("a <member> holds a <name> and then a <value>"),
    }
}

fn malformed<T>(what: impl Into<String>) -> Result<T, Error> {
    Err(Error::Malformed(what.into()))
}

fn encode_value(xml: &mut String, value: &Value) {
    xml.push_str("<value>");
    match value {
        Value::Int(number) if i32::try_from(*number).is_ok() => write!(xml, "<int>{number}</int>").unwrap(),
        Value::Int(number) => write!(xml, "<i8>{number}</i8>").unwrap(),
        Value::Bool(flag) => write!(xml, "<boolean>{}</boolean>", u8::from(*flag)).unwrap(),
        Value::Double(number) => write!(xml, "<double>{number}</double>").unwrap(),
        Value::Nil => xml.push_str("<nil/>"),
        Value::String(text) => {
            xml.push_str("<string>");
            escape_into(xml, text);
            xml.push_str("</string>");
        }
        Value::Array(items) => {
            xml.push_str("<array><data>");
            items.iter().for_each(|item| encode_value(xml, item));
            xml.push_str("</data></array>");
        }
        Value::Struct(members) => {
            xml.push_str("<struct>");
            for (name, member) in members {
                xml.push_str("<member><name>");
                escape_into(xml, name);
                xml.push_str("</name>");
                encode_value(xml, member);
                xml.push_str("</member>");
            }
            xml.push_str("</struct>");
        }
    }
    xml.push_str("</value>");
}

/// Escapes markup, and `\r` as a character reference so XML's end-of-line handling keeps it.
fn escape_into(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '\r' => xml.push_str("&#13;"),
            c => xml.push(c),
        }
    }
}

/// An XML element with its text (character data, CDATA and references, decoded and joined)
/// and its child elements. Attributes, comments and processing instructions are dropped:
/// neither XML-RPC nor OpenNebula's documents use them for data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Parses a whole document into its root element; the error says what is wrong.
    pub fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut open: Vec<Element> = Vec::new();
        let mut root = None;
        loop {
            let event = reader.read_event().map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
            match event {
                Event::Start(start) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH} levels"));
                    }
                    open.push(Element { name: start.name().into_inner().to_owned(), ..Element::default() });
                }
                Event::Empty(start) => {
                    let element = Element { name: start.name().into_inner().to_owned(), ..Element::default() };
                    adopt(&mut open, &mut root, element)?;
                }
                Event::End(_) => {
                    let element = open.pop().ok_or("a closing tag without an opening one")?;
                    adopt(&mut open, &mut root, element)?;
                }
                Event::Text(text) => push_text(&mut open, &text.xml10_content())?,
                Event::CData(data) => push_text(&mut open, &data.xml10_content())?,
                Event::GeneralRef(reference) => push_text(&mut open, &resolve(&reference)?)?,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        match (open.last(), root) {
            (Some(unclosed), _) => Err(format!("the document ends inside <{}> (truncated?)", unclosed.name)),
            (None, None) => Err("the document holds no element".to_owned()),
            (None, Some(root)) => Ok(root),
        }
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The children called `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    fn required(&self, name: &str) -> Result<&Element, Error> {
        self.child(name).ok_or_else(|| Error::Malformed(format!("<{}> lacks <{name}>", self.name)))
    }

    fn expect_name(&self, name: &str) -> Result<(), Error> {
        if self.name == name { Ok(()) } else { malformed(format!("expected <{name}>, found <{}>", self.name)) }
    }

    /// The single child element (whitespace around it is fine, other text is not).
    fn only_child(&self) -> Result<&Element, Error> {
        self.leaf_free()?;
        match self.children.as_slice() {
            [only] => Ok(only),
            children => malformed(format!("<{}> must hold one element, it holds {}", self.name, children.len())),
        }
    }

    /// The text of an element that must have no child elements.
    fn leaf_text(&self) -> Result<&str, Error> {
        match self.children.first() {
            None => Ok(&self.text),
            Some(child) => malformed(format!("<{}> must hold text, it holds <{}>", self.name, child.name)),
        }
    }

    /// Fails when an element meant to hold only elements holds text too.
    fn leaf_free(&self) -> Result<(), Error> {
        match self.text.trim() {
            "" => Ok(()),
            text => malformed(format!("<{}> holds stray text '{text}'", self.name)),
        }
    }
}

/// Attaches a finished element to its parent, or makes it the root.
fn adopt(open: &mut [Element], root: &mut Option<Element>, element: Element) -> Result<(), String> {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(format!("a second root element <{}> after the first", element.name)),
    }
    Ok(())
}

/// `&lt;`, `&#65;`, `&#x42;`: the five predefined entities and character references.
fn resolve(reference: &BytesRef<'_>) -> Result<String, String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => quick_xml::escape::resolve_predefined_entity(reference)
            .map(str::to_owned)
            .ok_or_else(|| format!("unknown entity &{};", &**reference)),
        Err(e) => Err(format!("bad character reference &{};: {e}", &**reference)),
    }
}

fn push_text(open: &mut [Element], text: &str) -> Result<(), String> {
    match open.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(format!("text '{}' outside the root element", text.trim())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> Vec<Value> {
        vec![
            Value::Int(-42),
            Value::Int(i64::from(i32::MAX) + 1),
            Value::Bool(true),
            Value::Bool(false),
            Value::String("a < b && c > \"d\" 'e'\r\n\ttab ünï".to_owned()),
            Value::String(String::new()),
            Value::Double(-1.5),
            Value::Nil,
            Value::Array(vec![Value::Int(1), Value::Array(vec![Value::String("x".to_owned())]), Value::Array(vec![])]),
            Value::Struct(vec![
                ("a&b".to_owned(), Value::Struct(vec![("inner".to_owned(), Value::Bool(false))])),
                ("list".to_owned(), Value::Array(vec![Value::Nil, Value::Double(0.25)])),
            ]),
        ]
    }

    #[test]
    fn calls_and_responses_round_trip_every_type() {
        let params = every_type();
        let xml = encode_call("one.vn.add_ar", &params);
        assert_eq!(decode_call(&xml).unwrap(), ("one.vn.add_ar".to_owned(), params.clone()));
        for value in params {
            assert_eq!(decode_response(&encode_response(&value)).unwrap(), value);
        }
    }

    #[test]
    fn markup_in_strings_is_escaped() {
        let xml = encode_call("m", &[Value::String("</string><int>1</int>&amp;".to_owned())]);
        assert!(xml.contains("&lt;/string&gt;&lt;int&gt;1&lt;/int&gt;&amp;amp;"), "{xml}");
    }

    #[test]
    fn untyped_cdata_references_and_whitespace_are_read_as_the_spec_says() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- c -->\n<methodCall>\n  <methodName> one.vm.info </methodName>\n  <params>\n    \
                   <param><value>plain &amp; &#65;&#x42;</value></param>\n    \
                   <param>\n<value>\n  <i4> 7 </i4>\n</value>\n</param>\n    \
                   <param><value><string><![CDATA[<VM><ID>1</ID></VM>]]> &lt;tail</string></value></param>\n    \
                   <param><value><string>  spaced  </string></value></param>\n    \
                   <param><value/></param>\n  </params>\n</methodCall>\n";
        let (method, params) = decode_call(xml).unwrap();
        assert_eq!(method, "one.vm.info");
        let expected = ["plain & AB", "", "<VM><ID>1</ID></VM> <tail", "  spaced  ", ""];
        assert_eq!(params[0], Value::String(expected[0].to_owned()));
        assert_eq!(params[1], Value::Int(7));
        assert_eq!(params[2], Value::String(expected[2].to_owned()));
        assert_eq!(params[3], Value::String(expected[3].to_owned()));
        assert_eq!(params[4], Value::String(String::new()));
        let no_params = decode_call("<methodCall><methodName>one.system.version</methodName></methodCall>").unwrap();
        assert_eq!(no_params, ("one.system.version".to_owned(), vec![]));
    }

    #[test]
    fn faults_decode_to_code_and_message() {
        match decode_response(&encode_fault(-501, "method <x> not found")) {
            Err(Error::Fault { code, message }) => assert_eq!((code, message.as_str()), (-501, "method <x> not found")),
            other => panic!("expected a fault, got {other:?}"),
        }
        let bad = "<methodResponse><fault><value><struct><member><name>faultCode</name><value><string>x</string>\
                   </value></member></struct></value></fault></methodResponse>";
        assert_malformed(decode_response(bad), "faultCode");
    }

    fn assert_malformed<T: std::fmt::Debug>(result: Result<T, Error>, needle: &str) {
        match result {
            Err(Error::Malformed(what)) => assert!(what.contains(needle), "'{what}' should mention '{needle}'"),
            other => panic!("expected Malformed mentioning '{needle}', got {other:?}"),
        }
    }

    fn response(value: &str) -> String {
        format!("<methodResponse><params><param><value>{value}</value></param></params></methodResponse>")
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        let full = encode_response(&Value::Array(vec![Value::Int(1)]));
        assert_malformed(decode_response(&full[..full.len() - 18]), "truncated");
        assert_malformed(decode_response(&full[..full.len() - 30]), "not closed");
        assert_malformed(decode_response(""), "no element");
        assert_malformed(decode_response("<methodCall></methodCall>"), "expected <methodResponse>");
        assert_malformed(decode_response("<methodResponse><params></params></methodResponse>"), "has 0");
        assert_malformed(decode_response("<methodResponse></methodResponse>"), "lacks <params>");
        assert_malformed(decode_response(&response("<int>12a</int>")), "'12a', not an integer");
        assert_malformed(decode_response(&response("<i4></i4>")), "not an integer");
        assert_malformed(decode_response(&response("<i8>99999999999999999999</i8>")), "not an integer");
        assert_malformed(decode_response(&response("<boolean>2</boolean>")), "not 0 or 1");
        assert_malformed(decode_response(&response("<double>x</double>")), "not a number");
        assert_malformed(decode_response(&response("<float>1</float>")), "no XML-RPC type");
        assert_malformed(decode_response(&response("<int>1</int><int>2</int>")), "holds 2");
        assert_malformed(decode_response(&response("<array><int>1</int></array>")), "expected <data>");
        assert_malformed(decode_response(&response("<struct><member><value/></member></struct>")), "<name>");
        assert_malformed(decode_response(&response("<int><b>1</b></int>")), "must hold text");
        assert_malformed(decode_response(&response("text<int>1</int>")), "stray text");
        assert_malformed(decode_response(&response("<string>&bogus;</string>")), "bogus");
        assert_malformed(decode_response("<methodResponse><params></wrong></methodResponse>"), "byte");
        assert_malformed(decode_response("<a/><b/>"), "second root");
        assert_malformed(decode_call("<methodCall><methodName> </methodName></methodCall>"), "empty");
        assert_malformed(decode_call("<methodCall><params/></methodCall>"), "lacks <methodName>");
        let deep = format!("{}{}", "<array><data><value>".repeat(300), "</value></data></array>".repeat(300));
        assert_malformed(decode_response(&response(&deep)), "deeper");
    }
}
