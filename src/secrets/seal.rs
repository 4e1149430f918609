//! Sealing, opening and re-sealing the sensitive values of a body's value map (a provider's
//! `connection`, a provision's `user_inputs_values`), given the input definitions stored beside
//! them (`user_inputs`); values of inputs that are not sensitive are never touched. And whole
//! documents (Terraform states, saved plans), sealed as one value whose plaintext is the
//! document's text.
//!
//! The associated data binds a sealed value to where it belongs: `v2:<key id>:<binding>`, where
//! a body's value is bound to its row and input (`provider:<id>:<input name>`,
//! `provision:<id>:<input name>`) and a document to its name, which names its provision. So a
//! sealed value copied onto another input, another row or another table does not open.
//!
//! The format before it, `v1`, bound a value to its input's name only. Reads refuse it, and a
//! clear value where a sealed one belongs, rather than use a value that may have been copied
//! from elsewhere; only the store's migration step ([`Older::Adopt`]) opens `v1` seals (with
//! their old associated data) and seals clear ones, bound to their row.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{Error, Key, Keyring};
use crate::driver::input;

/// The one key of a sealed value's object.
const MARK: &str = "$sealed";
/// The format written: its associated data binds the row.
const VERSION: &str = "v2";
/// The format before, whose associated data binds the input's name only; read by the migration
/// step alone.
const V1: &str = "v1";
/// How the JSON text of a sealed document starts (as serde_json writes a one-key object).
const DOCUMENT_START: &str = r#"{"$sealed":""#;

/// The row a body's values are sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Provider(i64),
    Provision(i64),
}

impl Row {
    /// The row and input a value is bound to, in its associated data.
    fn binding(self, name: &str) -> String {
        match self {
            Row::Provider(id) => format!("provider:{id}:{name}"),
            Row::Provision(id) => format!("provision:{id}:{name}"),
        }
    }

    /// How to set the value of input `name` again, for messages. formwork reads a row before it
    /// updates it, so the refused value is first removed by hand.
    fn set_again(self, name: &str) -> String {
        let values = match self {
            Row::Provider(_) => "connection",
            Row::Provision(_) => "user_inputs_values",
        };
        format!(
            "remove `{values}.{name}` from the body of {self} in the database by hand, then set it again by updating {self}"
        )
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Row::Provider(id) => write!(f, "provider {id}"),
            Row::Provision(id) => write!(f, "provision {id}"),
        }
    }
}

/// What a re-seal pass does with what no formwork writes any more: clear values where sealed
/// ones belong, and `v1` seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Older {
    /// The migration step: they are sealed, bound to their row (a `v1` seal opened first with
    /// its old associated data).
    Adopt,
    /// Every pass after it (a rotation): they are left as they are, and reads refuse them. A
    /// `v1` seal found then was put there past formwork, perhaps copied from another row, and
    /// binding it to this row would make it open here.
    Leave,
}

/// Where a sealed value belongs: what its associated data binds, and how errors name it and
/// say what to do about it.
struct Place {
    /// The binding of the current format.
    binding: String,
    /// The binding of a `v1` seal of the same value: the input's (or document's) name.
    v1_binding: String,
    what: String,
    advice: String,
}

impl Place {
    /// The value of input `name` in `row`.
    fn value(row: Row, name: &str) -> Place {
        Place {
            binding: row.binding(name),
            v1_binding: name.to_string(),
            what: format!("the value of '{name}' in {row}"),
            advice: row.set_again(name),
        }
    }

    /// A document of `name` (which names its provision).
    fn document(name: &str) -> Place {
        Place {
            binding: name.to_string(),
            v1_binding: name.to_string(),
            what: format!("the {name}"),
            advice: DOCUMENT_ADVICE.to_string(),
        }
    }

    fn malformed(&self, message: &str) -> Error {
        Error::Malformed { what: self.what.clone(), message: message.to_string() }
    }

    fn damaged(&self, key_id: &str) -> Error {
        Error::Damaged { what: self.what.clone(), key_id: key_id.to_string(), advice: self.advice.clone() }
    }
}

/// A sealed value's text, taken apart.
struct Parts<'a> {
    version: &'a str,
    key_id: &'a str,
    payload: &'a str,
}

/// The parts of a sealed value, or `None` for a clear value. `Err` for a sealed value whose
/// text is not in a known format.
fn parts<'a>(value: &'a Value, place: &Place) -> Result<Option<Parts<'a>>, Error> {
    let Some(text) = value.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(MARK)) else { return Ok(None) };
    let text = text.as_str().ok_or_else(|| place.malformed("it is not text"))?;
    let (version, rest) = text.split_once(':').ok_or_else(|| place.malformed("it has no format tag"))?;
    if version != VERSION && version != V1 {
        return Err(place.malformed(&format!("unknown format '{version}'; a newer formwork sealed it")));
    }
    let (key_id, payload) = rest.split_once(':').ok_or_else(|| place.malformed("it names no key"))?;
    Ok(Some(Parts { version, key_id, payload }))
}

/// The id of the key that sealed `value`, if it is a sealed value in a known format.
pub fn key_of(value: &Value) -> Option<&str> {
    parts(value, &Place::document("")).ok().flatten().map(|p| p.key_id)
}

/// What the value is bound to besides its key: the format, the key and the binding.
fn associated(version: &str, key_id: &str, binding: &str) -> String {
    format!("{version}:{key_id}:{binding}")
}

/// `plain` sealed with `key` for `binding`, as a sealed value.
fn seal_bytes(key: &Key, binding: &str, plain: &[u8]) -> Result<Value, Error> {
    seal_in(VERSION, key, binding, plain)
}

fn seal_in(version: &str, key: &Key, binding: &str, plain: &[u8]) -> Result<Value, Error> {
    let sealed = key.seal(associated(version, key.id(), binding).as_bytes(), plain)?;
    let text = format!("{version}:{}:{}", key.id(), STANDARD.encode(sealed));
    Ok(Value::Object(Map::from_iter([(MARK.to_string(), Value::String(text))])))
}

/// `plain` (a value's JSON text, or a document) sealed for `name` as formwork sealed it before
/// values were bound to their row (`v1`), for tests of the migration step.
#[cfg(test)]
pub fn seal_v1(key: &Key, name: &str, plain: &[u8]) -> Value {
    seal_in(V1, key, name, plain).expect("sealing")
}

/// The plaintext of sealed `parts` of the value at `place`, opened with the binding of their
/// own format.
fn open_parts(keyring: &Keyring, parts: &Parts<'_>, place: &Place) -> Result<Vec<u8>, Error> {
    let key = keyring.get(parts.key_id)?;
    let sealed = STANDARD.decode(parts.payload).map_err(|_| place.malformed("its payload is not base64"))?;
    let binding = if parts.version == V1 { &place.v1_binding } else { &place.binding };
    let aad = associated(parts.version, parts.key_id, binding);
    key.open(aad.as_bytes(), &sealed).ok_or_else(|| place.damaged(parts.key_id))
}

/// The plaintext of a value sealed (in the current format) for `place`, and the id of its key.
/// A clear value or a `v1` seal is refused.
fn open_bytes(keyring: &Keyring, place: &Place, value: &Value) -> Result<(String, Vec<u8>), Error> {
    let (what, advice) = (place.what.clone(), place.advice.clone());
    let Some(parts) = parts(value, place)? else { return Err(Error::Clear { what, advice }) };
    if parts.version != VERSION {
        return Err(Error::Unbound { what, advice });
    }
    Ok((parts.key_id.to_string(), open_parts(keyring, &parts, place)?))
}

/// The plaintext `value` (at `place`) is to be sealed with `key` again from, as the pass `older`
/// takes it (`clear` gives it for a clear value): `None` when it stays as it is (already sealed
/// with `key`, or older and left).
fn to_reseal(
    keyring: &Keyring,
    (key, older): (&Key, Older),
    place: &Place,
    value: &Value,
    clear: impl FnOnce() -> Vec<u8>,
) -> Result<Option<Vec<u8>>, Error> {
    match parts(value, place)? {
        Some(p) if p.version == VERSION && p.key_id == key.id() => Ok(None),
        Some(p) if p.version == VERSION => open_parts(keyring, &p, place).map(Some),
        _ if older == Older::Leave => Ok(None),
        Some(p) => open_parts(keyring, &p, place).map(Some),
        None => Ok(Some(clear())),
    }
}

/// What to do about a document that does not open as it should.
const DOCUMENT_ADVICE: &str =
    "restore the database (with the key beside it) from a backup; a saved plan is made again by planning";

/// A stored document's text as a value: the sealed value it holds, or `Null` for a clear text.
fn document_value(stored: &str, place: &Place) -> Result<Value, Error> {
    if !stored.starts_with(DOCUMENT_START) {
        return Ok(Value::Null);
    }
    serde_json::from_str(stored).map_err(|e| place.malformed(&e.to_string()))
}

/// A whole document (`content`, e.g. a Terraform state or a saved plan) sealed with `key` for
/// `name` (which names its provision): the JSON text of one sealed value,
/// `{"$sealed":"v2:<key id>:…"}`, whose plaintext is `content` itself.
pub fn seal_document(key: &Key, name: &str, content: &[u8]) -> Result<String, Error> {
    Ok(seal_bytes(key, name, content)?.to_string())
}

/// The id of the key that sealed a stored document, if it is sealed. Looks at the start of the
/// text only: a clear document (a Terraform state) is never parsed here.
pub fn document_key(stored: &str) -> Option<String> {
    key_of(&document_value(stored, &Place::document("")).ok()?).map(str::to_string)
}

/// The clear text of a stored document of `name`, which must be sealed for it.
pub fn open_document(keyring: &Keyring, name: &str, stored: &str) -> Result<String, Error> {
    let (id, plain) = open_sealed_document(keyring, name, stored)?;
    String::from_utf8(plain).map_err(|_| Place::document(name).damaged(&id))
}

/// The content of a stored document of `name` (a saved plan: bytes), which must be sealed for
/// it, and the id of the key that sealed it.
pub fn open_sealed_document(keyring: &Keyring, name: &str, stored: &str) -> Result<(String, Vec<u8>), Error> {
    let place = Place::document(name);
    open_bytes(keyring, &place, &document_value(stored, &place)?)
}

/// A stored document of `name` sealed with `key`, as the pass `older` takes it (see
/// [`Older`]): opened first if another key sealed it. `None` when it stays as it is.
pub fn reseal_document(
    keyring: &Keyring,
    (key, older): (&Key, Older),
    name: &str,
    stored: &str,
) -> Result<Option<String>, Error> {
    let place = Place::document(name);
    let value = document_value(stored, &place)?;
    let plain = to_reseal(keyring, (key, older), &place, &value, || stored.as_bytes().to_vec())?;
    plain.map(|plain| seal_document(key, name, &plain)).transpose()
}

/// Whether `values` holds a value of a sensitive input of `user_inputs`: one to seal.
pub fn holds_sensitive(user_inputs: &Value, values: &Map<String, Value>) -> bool {
    !values.is_empty() && input::sensitive_names(&input::stored(user_inputs)).any(|name| values.contains_key(name))
}

/// Seals with `key`, in `values` of `row`, the value of every sensitive input of `user_inputs`;
/// returns whether it sealed any. `values` comes from above the store, so every value in it is
/// clear.
pub fn seal_values(key: &Key, row: Row, user_inputs: &Value, values: &mut Map<String, Value>) -> Result<bool, Error> {
    let inputs = input::stored(user_inputs);
    let mut sealed = false;
    for name in input::sensitive_names(&inputs) {
        if let Some(value) = values.get_mut(name) {
            *value = seal_bytes(key, &row.binding(name), value.to_string().as_bytes())?;
            sealed = true;
        }
    }
    Ok(sealed)
}

/// Opens, in `values` of `row`, the value of every sensitive input of `user_inputs`. Each must be
/// sealed for this row and input: a clear value or a `v1` seal is refused, naming the row.
pub fn open_values(
    keyring: &Keyring,
    row: Row,
    user_inputs: &Value,
    values: &mut Map<String, Value>,
) -> Result<(), Error> {
    if values.is_empty() {
        return Ok(());
    }
    let inputs = input::stored(user_inputs);
    for name in input::sensitive_names(&inputs) {
        let Some(value) = values.get_mut(name) else { continue };
        let place = Place::value(row, name);
        let (id, plain) = open_bytes(keyring, &place, value)?;
        *value = serde_json::from_slice(&plain).map_err(|_| place.damaged(&id))?;
    }
    Ok(())
}

/// Makes every sensitive value in `values` of `row` sealed with `key`, as the pass `older` takes
/// it (see [`Older`]): values sealed with another key are opened and sealed again. Returns
/// whether anything changed.
pub fn reseal_values(
    keyring: &Keyring,
    (key, older): (&Key, Older),
    row: Row,
    user_inputs: &Value,
    values: &mut Map<String, Value>,
) -> Result<bool, Error> {
    let inputs = input::stored(user_inputs);
    let mut changed = false;
    for name in input::sensitive_names(&inputs) {
        let Some(value) = values.get_mut(name) else { continue };
        let place = Place::value(row, name);
        let clear = || value.to_string().into_bytes();
        let Some(plain) = to_reseal(keyring, (key, older), &place, value, clear)? else { continue };
        *value = seal_bytes(key, &place.binding, &plain)?;
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::secrets::Source;

    fn ring() -> Keyring {
        let ring = Keyring::new(Source::Ephemeral);
        ring.load(false).unwrap();
        ring
    }

    fn inputs() -> Value {
        json!([
            {"name": "token", "type": "string", "sensitive": true},
            {"name": "ports", "type": "list(number)", "sensitive": true},
            {"name": "size", "type": "number"}
        ])
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const ROW: Row = Row::Provider(3);

    #[test]
    fn only_sensitive_values_are_sealed_and_they_open_as_they_were() {
        let ring = ring();
        let clear = map(json!({"token": "canary-s3cret", "ports": [22, 443], "size": 2}));
        let mut values = clear.clone();
        assert!(holds_sensitive(&inputs(), &values));
        assert!(seal_values(&ring.sealing().unwrap(), ROW, &inputs(), &mut values).unwrap());
        let text = Value::Object(values.clone()).to_string();
        assert!(!text.contains("canary-s3cret") && !text.contains("443"), "{text}");
        assert_eq!(values["size"], 2, "values that are not sensitive stay clear");
        let id = ring.sealing().unwrap().id().to_string();
        assert_eq!(key_of(&values["token"]), Some(id.as_str()));
        assert!(values["token"]["$sealed"].as_str().unwrap().starts_with(&format!("v2:{id}:")));
        open_values(&ring, ROW, &inputs(), &mut values).unwrap();
        assert_eq!(values, clear);
        let mut none = map(json!({"size": 1}));
        assert!(!holds_sensitive(&inputs(), &none));
        assert!(!seal_values(&ring.sealing().unwrap(), ROW, &inputs(), &mut none).unwrap(), "nothing to seal");
    }

    /// The property: a sealed value opens in the row and input it was sealed for, and nowhere
    /// else: not in another row of the same table, not in the same id of the other table, not
    /// under another input.
    #[test]
    fn a_sealed_value_opens_only_in_its_row_and_input() {
        let ring = ring();
        let mut values = map(json!({"token": "a", "ports": [1]}));
        seal_values(&ring.sealing().unwrap(), ROW, &inputs(), &mut values).unwrap();
        assert!(open_values(&ring, ROW, &inputs(), &mut values.clone()).is_ok(), "it opens where it was sealed");
        for row in [Row::Provider(4), Row::Provision(3)] {
            let err = open_values(&ring, row, &inputs(), &mut values.clone()).unwrap_err();
            let expected = format!("the value of 'token' in {row}");
            assert!(matches!(&err, Error::Damaged { what, .. } if *what == expected), "{err}");
        }
        let mut swapped = values.clone();
        swapped.insert("ports".into(), values["token"].clone());
        let err = open_values(&ring, ROW, &inputs(), &mut swapped).unwrap_err();
        assert!(matches!(&err, Error::Damaged { what, .. } if what.contains("'ports' in provider 3")), "{err}");
        let mut altered = values.clone();
        let text = altered["token"]["$sealed"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", &text[..text.len() - 2], if text.ends_with("AA") { "BA" } else { "AA" });
        altered["token"]["$sealed"] = json!(flipped);
        assert!(open_values(&ring, ROW, &inputs(), &mut altered).is_err());
    }

    /// A clear value or a `v1` seal where a sealed value belongs is refused on read, naming the
    /// row and what to do; only the migration step takes them, bound to their row.
    #[test]
    fn clear_values_and_v1_seals_are_refused_and_only_the_migration_step_binds_them() {
        let ring = ring();
        let key = ring.sealing().unwrap();
        let v1 = map(json!({"token": seal_v1(&key, "token", br#""a""#), "ports": [8080], "size": 1}));
        let err = open_values(&ring, ROW, &inputs(), &mut v1.clone()).unwrap_err();
        assert!(matches!(&err, Error::Unbound { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("'token' in provider 3") && message.contains("by updating provider 3"), "{message}");
        let mut clear = v1.clone();
        clear.remove("token");
        let err = open_values(&ring, Row::Provision(5), &inputs(), &mut clear).unwrap_err();
        assert!(matches!(&err, Error::Clear { what, .. } if what == "the value of 'ports' in provision 5"), "{err}");

        let mut left = v1.clone();
        assert!(!reseal_values(&ring, (&key, Older::Leave), ROW, &inputs(), &mut left).unwrap());
        assert_eq!(left, v1, "a rotation leaves them as they are");
        let mut adopted = v1.clone();
        assert!(reseal_values(&ring, (&key, Older::Adopt), ROW, &inputs(), &mut adopted).unwrap());
        assert!(!reseal_values(&ring, (&key, Older::Adopt), ROW, &inputs(), &mut adopted.clone()).unwrap(), "once");
        assert!(open_values(&ring, Row::Provider(4), &inputs(), &mut adopted.clone()).is_err(), "bound to its row");
        open_values(&ring, ROW, &inputs(), &mut adopted).unwrap();
        assert_eq!(Value::Object(adopted), json!({"token": "a", "ports": [8080], "size": 1}));
        let mut moved = map(json!({"ports": seal_v1(&key, "token", b"[1]")}));
        let err = reseal_values(&ring, (&key, Older::Adopt), ROW, &inputs(), &mut moved).unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "a v1 seal still opens only for its input: {err}");
    }

    #[test]
    fn a_value_sealed_with_an_unknown_key_names_that_key() {
        let mut values = map(json!({"token": "a"}));
        seal_values(&ring().sealing().unwrap(), ROW, &inputs(), &mut values).unwrap();
        let err = open_values(&ring(), ROW, &inputs(), &mut values).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn a_document_is_sealed_whole_and_opens_only_for_its_name() {
        let ring = ring();
        let key = ring.sealing().unwrap();
        let state = "{\n  \"version\": 4,\n  \"outputs\": {\"password\": {\"value\": \"canary-s3cret\", \"sensitive\": true}}\n}\n";
        let stored = seal_document(&key, "state 1", state.as_bytes()).unwrap();
        assert!(
            !stored.contains("canary") && stored.starts_with(&format!("{{\"$sealed\":\"v2:{}:", key.id())),
            "{stored}"
        );
        assert_eq!(document_key(&stored).as_deref(), Some(key.id()));
        assert_eq!(open_document(&ring, "state 1", &stored).unwrap(), state, "byte for byte");
        let err = open_document(&ring, "state 2", &stored).unwrap_err();
        assert!(matches!(&err, Error::Damaged { what, .. } if what == "the state 2"), "{err}");
        assert_eq!(document_key(state), None);
        let err = open_document(&ring, "state 1", state).unwrap_err();
        assert!(matches!(err, Error::Clear { .. }), "a clear document is refused: {err}");
        let v1 = seal_v1(&key, "state 1", state.as_bytes()).to_string();
        assert!(matches!(open_document(&ring, "state 1", &v1), Err(Error::Unbound { .. })));
        assert!(open_document(&ring, "state 1", r#"{"$sealed":"v2:0000000000000000:AAAA"}"#).is_err());
    }

    #[test]
    fn resealing_a_document_moves_it_to_the_new_key_once() {
        let ring = ring();
        let old = ring.sealing().unwrap();
        let under_old = seal_document(&old, "state 1", b"{}").unwrap();
        let leave = (&*old, Older::Leave);
        assert_eq!(reseal_document(&ring, leave, "state 1", &under_old).unwrap(), None, "already under it");
        let new = ring.add_key().unwrap();
        let moved = reseal_document(&ring, (&new, Older::Leave), "state 1", &under_old).unwrap().unwrap();
        assert_eq!(document_key(&moved).as_deref(), Some(new.id()));
        assert_eq!(reseal_document(&ring, (&new, Older::Leave), "state 1", r#"{"serial": 3}"#).unwrap(), None);
        let sealed = reseal_document(&ring, (&new, Older::Adopt), "state 1", r#"{"serial": 3}"#).unwrap().unwrap();
        assert_eq!(document_key(&sealed).as_deref(), Some(new.id()), "the migration step seals a clear document");
        assert_eq!(open_document(&ring, "state 1", &sealed).unwrap(), r#"{"serial": 3}"#);
        assert_eq!(open_document(&ring, "state 1", &moved).unwrap(), "{}");
    }

    #[test]
    fn resealing_moves_every_value_to_the_new_key() {
        let ring = ring();
        let old = ring.sealing().unwrap();
        let mut values = map(json!({"token": "a", "ports": [8080], "size": 3}));
        seal_values(&old, ROW, &inputs(), &mut values).unwrap();
        let new = ring.add_key().unwrap();
        assert!(reseal_values(&ring, (&new, Older::Leave), ROW, &inputs(), &mut values).unwrap());
        assert_eq!(key_of(&values["token"]), Some(new.id()));
        assert_eq!(key_of(&values["ports"]), Some(new.id()));
        let again = reseal_values(&ring, (&new, Older::Leave), ROW, &inputs(), &mut values).unwrap();
        assert!(!again, "a second pass changes nothing");
        open_values(&ring, ROW, &inputs(), &mut values).unwrap();
        assert_eq!(Value::Object(values), json!({"token": "a", "size": 3, "ports": [8080]}));
    }
}
