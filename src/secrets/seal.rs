//! Sealing, opening and re-sealing the sensitive values of a body's value map (a provider's
//! `connection`, a provision's `user_inputs_values`), given the input definitions stored beside
//! them (`user_inputs`); values of inputs that are not sensitive are never touched. And whole
//! documents (Terraform states), sealed as one value whose plaintext is the document's text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{Error, Key, Keyring};
use crate::driver::input;

/// The one key of a sealed value's object.
const MARK: &str = "$sealed";
/// The format of the sealed text; a new format gets a new tag and both are read.
const VERSION: &str = "v1";
/// How the JSON text of a sealed document starts (as serde_json writes a one-key object).
const DOCUMENT_START: &str = r#"{"$sealed":""#;

/// The id of the key that sealed `value`, if it is a sealed value.
pub fn key_of(value: &Value) -> Option<&str> {
    let (version, rest) = sealed_text(value)?.split_once(':')?;
    if version != VERSION {
        return None;
    }
    rest.split_once(':').map(|(id, _)| id)
}

fn sealed_text(value: &Value) -> Option<&str> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    object.get(MARK)?.as_str()
}

/// What the value is bound to besides its key: the format, the key and the input's name.
fn associated(key_id: &str, name: &str) -> String {
    format!("{VERSION}:{key_id}:{name}")
}

/// `value` (of input `name`) sealed with `key`.
fn seal(key: &Key, name: &str, value: &Value) -> Result<Value, Error> {
    seal_bytes(key, name, value.to_string().as_bytes())
}

/// The clear value of a sealed value of input `name`.
fn open(keyring: &Keyring, name: &str, value: &Value) -> Result<Value, Error> {
    let (id, plain) = open_bytes(keyring, name, value)?;
    serde_json::from_slice(&plain).map_err(|_| Error::Damaged { name: name.to_string(), key_id: id })
}

/// `plain` sealed with `key` for `name`, as a sealed value.
fn seal_bytes(key: &Key, name: &str, plain: &[u8]) -> Result<Value, Error> {
    let sealed = key.seal(associated(key.id(), name).as_bytes(), plain)?;
    let text = format!("{VERSION}:{}:{}", key.id(), STANDARD.encode(sealed));
    Ok(Value::Object(Map::from_iter([(MARK.to_string(), Value::String(text))])))
}

/// The plaintext of a sealed value sealed for `name`, and the id of the key that sealed it.
fn open_bytes(keyring: &Keyring, name: &str, value: &Value) -> Result<(String, Vec<u8>), Error> {
    let malformed = |message: &str| Error::Malformed { name: name.to_string(), message: message.to_string() };
    let text = sealed_text(value).ok_or_else(|| malformed("it is not a sealed value"))?;
    let (version, rest) = text.split_once(':').ok_or_else(|| malformed("it has no format tag"))?;
    if version != VERSION {
        return Err(malformed(&format!("unknown format '{version}'; a newer formwork sealed it")));
    }
    let (id, payload) = rest.split_once(':').ok_or_else(|| malformed("it names no key"))?;
    let key = keyring.get(id)?;
    let sealed = STANDARD.decode(payload).map_err(|_| malformed("its payload is not base64"))?;
    let damaged = || Error::Damaged { name: name.to_string(), key_id: id.to_string() };
    let plain = key.open(associated(id, name).as_bytes(), &sealed).ok_or_else(damaged)?;
    Ok((id.to_string(), plain))
}

/// A whole document (`content`, e.g. a Terraform state or a saved plan) sealed with `key` for
/// `name`: the JSON text of one sealed value, `{"$sealed":"v1:<key id>:…"}`, whose plaintext is
/// `content` itself.
pub fn seal_document(key: &Key, name: &str, content: &[u8]) -> Result<String, Error> {
    Ok(seal_bytes(key, name, content)?.to_string())
}

/// The id of the key that sealed a stored document, if it is sealed. Looks at the start of the
/// text only: a clear document (a Terraform state) is never parsed here.
pub fn document_key(stored: &str) -> Option<String> {
    if !stored.starts_with(DOCUMENT_START) {
        return None;
    }
    let value: Value = serde_json::from_str(stored).ok()?;
    key_of(&value).map(str::to_string)
}

/// The clear text of a stored document of `name`: opened when it is sealed, as it is when it is
/// not (a row written before documents were sealed, not yet reached by the step that seals them).
pub fn open_document(keyring: &Keyring, name: &str, stored: &str) -> Result<String, Error> {
    if document_key(stored).is_none() {
        return Ok(stored.to_string());
    }
    let (id, plain) = open_sealed_document(keyring, name, stored)?;
    String::from_utf8(plain).map_err(|_| Error::Damaged { name: name.to_string(), key_id: id })
}

/// The content of a document of `name` that must be sealed (a saved plan: never clear), and
/// the id of the key that sealed it.
pub fn open_sealed_document(keyring: &Keyring, name: &str, stored: &str) -> Result<(String, Vec<u8>), Error> {
    let value: Value =
        serde_json::from_str(stored).map_err(|e| Error::Malformed { name: name.into(), message: e.to_string() })?;
    open_bytes(keyring, name, &value)
}

/// A stored document of `name` sealed with `key`: opened first if another key sealed it, sealed
/// if it was clear. `None` when it is already under `key`.
pub fn reseal_document(keyring: &Keyring, key: &Key, name: &str, stored: &str) -> Result<Option<String>, Error> {
    if document_key(stored).as_deref() == Some(key.id()) {
        return Ok(None);
    }
    let clear = open_document(keyring, name, stored)?;
    seal_document(key, name, clear.as_bytes()).map(Some)
}

/// Seals with `key`, in `values`, the value of every sensitive input of `user_inputs`; returns
/// whether it sealed any. `values` comes from above the store, so every value in it is clear.
pub fn seal_values(key: &Key, user_inputs: &Value, values: &mut Map<String, Value>) -> Result<bool, Error> {
    let inputs = input::stored(user_inputs);
    let mut sealed = false;
    for name in input::sensitive_names(&inputs) {
        if let Some(value) = values.get_mut(name) {
            *value = seal(key, name, value)?;
            sealed = true;
        }
    }
    Ok(sealed)
}

/// Opens, in `values`, the sealed value of every sensitive input of `user_inputs`. A clear value
/// (a row a migration has not reached) is left as it is.
pub fn open_values(keyring: &Keyring, user_inputs: &Value, values: &mut Map<String, Value>) -> Result<(), Error> {
    // Most bodies hold no sealed value: no need to read their input definitions.
    if !values.values().any(|v| key_of(v).is_some()) {
        return Ok(());
    }
    let inputs = input::stored(user_inputs);
    for name in input::sensitive_names(&inputs) {
        if let Some(value) = values.get_mut(name).filter(|v| key_of(v).is_some()) {
            *value = open(keyring, name, value)?;
        }
    }
    Ok(())
}

/// Makes every sensitive value in `values` sealed with `key`: values sealed with another key are
/// opened and sealed again, clear ones are sealed. Returns whether anything changed.
pub fn reseal_values(
    keyring: &Keyring,
    key: &Key,
    user_inputs: &Value,
    values: &mut Map<String, Value>,
) -> Result<bool, Error> {
    let inputs = input::stored(user_inputs);
    let mut changed = false;
    for name in input::sensitive_names(&inputs) {
        let Some(value) = values.get_mut(name) else { continue };
        let clear = match key_of(value) {
            Some(id) if id == key.id() => continue,
            Some(_) => open(keyring, name, value)?,
            None => value.clone(),
        };
        *value = seal(key, name, &clear)?;
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

    #[test]
    fn only_sensitive_values_are_sealed_and_they_open_as_they_were() {
        let ring = ring();
        let clear = json!({"token": "canary-s3cret", "ports": [22, 443], "size": 2}).as_object().unwrap().clone();
        let mut values = clear.clone();
        assert!(seal_values(&ring.sealing().unwrap(), &inputs(), &mut values).unwrap());
        let text = Value::Object(values.clone()).to_string();
        assert!(!text.contains("canary-s3cret") && !text.contains("443"), "{text}");
        assert_eq!(values["size"], 2, "values that are not sensitive stay clear");
        let id = ring.sealing().unwrap().id().to_string();
        assert_eq!(key_of(&values["token"]), Some(id.as_str()));
        assert!(values["token"]["$sealed"].as_str().unwrap().starts_with(&format!("v1:{id}:")));
        open_values(&ring, &inputs(), &mut values).unwrap();
        assert_eq!(values, clear);
        let mut none = json!({"size": 1}).as_object().unwrap().clone();
        assert!(!seal_values(&ring.sealing().unwrap(), &inputs(), &mut none).unwrap(), "nothing to seal");
    }

    #[test]
    fn a_sealed_value_moved_to_another_input_or_altered_does_not_open() {
        let ring = ring();
        let mut values = json!({"token": "a", "ports": [1]}).as_object().unwrap().clone();
        seal_values(&ring.sealing().unwrap(), &inputs(), &mut values).unwrap();
        let mut swapped = values.clone();
        swapped.insert("ports".into(), values["token"].clone());
        let err = open_values(&ring, &inputs(), &mut swapped).unwrap_err();
        assert!(matches!(&err, Error::Damaged { name, .. } if name == "ports"), "{err}");
        let mut altered = values.clone();
        let text = altered["token"]["$sealed"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", &text[..text.len() - 2], if text.ends_with("AA") { "BA" } else { "AA" });
        altered["token"]["$sealed"] = json!(flipped);
        assert!(open_values(&ring, &inputs(), &mut altered).is_err());
    }

    #[test]
    fn a_value_sealed_with_an_unknown_key_names_that_key() {
        let mut values = json!({"token": "a"}).as_object().unwrap().clone();
        seal_values(&ring().sealing().unwrap(), &inputs(), &mut values).unwrap();
        let err = open_values(&ring(), &inputs(), &mut values).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn a_document_is_sealed_whole_and_opens_only_for_its_name() {
        let ring = ring();
        let key = ring.sealing().unwrap();
        let state = "{\n  \"version\": 4,\n  \"outputs\": {\"password\": {\"value\": \"canary-s3cret\", \"sensitive\": true}}\n}\n";
        let stored = seal_document(&key, "state 1", state.as_bytes()).unwrap();
        assert!(
            !stored.contains("canary") && stored.starts_with(&format!("{{\"$sealed\":\"v1:{}:", key.id())),
            "{stored}"
        );
        assert_eq!(document_key(&stored).as_deref(), Some(key.id()));
        assert_eq!(open_document(&ring, "state 1", &stored).unwrap(), state, "byte for byte");
        let err = open_document(&ring, "state 2", &stored).unwrap_err();
        assert!(matches!(&err, Error::Damaged { name, .. } if name == "state 2"), "{err}");
        assert_eq!(document_key(state), None);
        assert_eq!(open_document(&ring, "state 1", state).unwrap(), state, "a clear document is read as it is");
        assert!(open_document(&ring, "state 1", r#"{"$sealed":"v1:0000000000000000:AAAA"}"#).is_err());
    }

    #[test]
    fn resealing_a_document_moves_it_to_the_new_key_once() {
        let ring = ring();
        let old = ring.sealing().unwrap();
        let under_old = seal_document(&old, "state 1", b"{}").unwrap();
        assert_eq!(reseal_document(&ring, &old, "state 1", &under_old).unwrap(), None, "already under it");
        let new = ring.add_key().unwrap();
        let moved = reseal_document(&ring, &new, "state 1", &under_old).unwrap().unwrap();
        assert_eq!(document_key(&moved).as_deref(), Some(new.id()));
        let sealed = reseal_document(&ring, &new, "state 1", r#"{"serial": 3}"#).unwrap().unwrap();
        assert_eq!(document_key(&sealed).as_deref(), Some(new.id()), "a clear document is sealed");
        assert_eq!(open_document(&ring, "state 1", &sealed).unwrap(), r#"{"serial": 3}"#);
        assert_eq!(open_document(&ring, "state 1", &moved).unwrap(), "{}");
    }

    #[test]
    fn resealing_moves_every_value_to_the_new_key_and_seals_clear_ones() {
        let ring = ring();
        let old = ring.sealing().unwrap();
        let mut values = json!({"token": "a", "size": 3}).as_object().unwrap().clone();
        seal_values(&old, &inputs(), &mut values).unwrap();
        values.insert("ports".into(), json!([8080]));
        let new = ring.add_key().unwrap();
        assert!(reseal_values(&ring, &new, &inputs(), &mut values).unwrap());
        assert_eq!(key_of(&values["token"]), Some(new.id()));
        assert_eq!(key_of(&values["ports"]), Some(new.id()), "a clear value is sealed");
        assert!(!reseal_values(&ring, &new, &inputs(), &mut values).unwrap(), "a second pass changes nothing");
        open_values(&ring, &inputs(), &mut values).unwrap();
        assert_eq!(Value::Object(values), json!({"token": "a", "size": 3, "ports": [8080]}));
    }
}
