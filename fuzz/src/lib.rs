//! The fuzz harness: what `fuzz_targets/*.rs` run under libFuzzer and what
//! `tests/driver_fuzz.rs` replays from `tests/fixtures/fuzz-corpus/` on stable (it includes this
//! file by path). Each function takes raw bytes, goes through the driver code in the order
//! `driver::verify::load` does, and panics only on a broken property: a panic inside formwork,
//! an empty error message, input definitions that do not read back the same from a stored
//! body, or default values that do not validate to themselves.

use formwork::driver::input::{self, Input};
use formwork::driver::{deployment, schema, terraform, validate};
use serde_json::{Map, Value};

/// What a harness made of one input.
#[derive(Debug)]
pub enum Outcome {
    /// The driver code accepted it and everything after the parse ran.
    Accepted,
    /// The driver code refused it with this message (never empty).
    Refused(String),
    /// The loader would not hand it to this code at all (not UTF-8, no metadata block).
    Skipped,
}

/// A harness: raw bytes in, what the driver code made of them out.
pub type Harness = fn(&[u8]) -> Outcome;

/// Every fuzz target by name (`fuzz_targets/<name>.rs`, `tests/fixtures/fuzz-corpus/<name>/`).
pub const TARGETS: [(&str, Harness); 2] = [("hcl_inputs", hcl_inputs), ("j2_metadata", j2_metadata)];

/// `variables.tf`, `validators.tf` and `provider.tf` in one input, separated by NUL bytes (which
/// HCL never contains): validators first, then the connection and the user inputs from them,
/// each input prepared, as `verify::load` reads a driver's Terraform files.
pub fn hcl_inputs(data: &[u8]) -> Outcome {
    // `DriverDir::read` refuses non-UTF-8 files before any parser sees them.
    let Ok(text) = std::str::from_utf8(data) else { return Outcome::Skipped };
    let mut parts = text.splitn(3, '\0');
    let (variables, validators, provider) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let read = || -> Result<Vec<Input>, String> {
        let validators = terraform::validators(&terraform::parse(validators)?)?;
        let mut inputs = tf_inputs(provider, &validators)?;
        inputs.extend(tf_inputs(variables, &validators)?);
        Ok(inputs)
    };
    match read() {
        Ok(inputs) => {
            exercise(&inputs);
            Outcome::Accepted
        }
        Err(message) => refused(message),
    }
}

fn tf_inputs(source: &str, validators: &Map<String, Value>) -> Result<Vec<Input>, String> {
    let mut inputs = terraform::inputs(&terraform::parse(source)?, validators)?;
    for input in &mut inputs {
        input.prepare()?;
    }
    Ok(inputs)
}

/// One `ansible/templates/*.j2`: its `{# ... #}` metadata, Jinja2 syntax and `one_objects`,
/// then the same objects with the deployment's own defaults substituted, as a provision of it
/// would compute them.
pub fn j2_metadata(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else { return Outcome::Skipped };
    // `verify::check_layout` refuses a template without a metadata block before loading it.
    if deployment::metadata(text).is_none() {
        return Outcome::Skipped;
    }
    let file = "ansible/templates/fuzz.j2";
    match deployment::load(file, "/fuzz/ansible/templates/fuzz.j2", text.to_string()) {
        Ok(loaded) => {
            serde_json::to_value(&loaded).expect("a deployment serialises");
            let inputs = loaded.user_inputs.clone().unwrap_or_default();
            let values = exercise(&inputs);
            let _ = deployment::one_objects(&loaded.source, Some(&values));
            Outcome::Accepted
        }
        Err(message) => {
            assert!(message.contains(file), "the error names the template: {message}");
            refused(message)
        }
    }
}

fn refused(message: String) -> Outcome {
    assert!(!message.trim().is_empty(), "an error without a message");
    Outcome::Refused(message)
}

/// Runs what a loaded driver's inputs go through (serving, storing with a provider or provision
/// and reading back, JSON Schema, validation of values) and returns the values validation
/// filled in from the defaults (empty when it refused).
fn exercise(inputs: &[Input]) -> Map<String, Value> {
    let served = serde_json::to_value(inputs).expect("inputs serialise");
    serde_json::to_string(&schema::of("fuzz", inputs)).expect("the schema serialises");
    // A provider or provision body keeps its input definitions as JSON text in the store, and
    // `input::stored` reads them back to redact, mask and validate; what it cannot read it drops.
    let text = serde_json::to_string(&serde_json::json!({ "user_inputs": served })).expect("a body serialises");
    let body: Value = serde_json::from_str(&text).expect("a stored body reads back");
    let stored = input::prepared(&body["user_inputs"]);
    assert_eq!(serde_json::to_value(&stored).ok().as_ref(), Some(&served), "stored inputs read back differently");
    assert!(stored.iter().all(|i| i.compiled.is_some()), "a stored input no longer prepares");
    let Ok(filled) = validate::validate(inputs, &Value::Object(Map::new())) else { return Map::new() };
    // Values formwork filled in are stored with the provision and validated again on update,
    // against the stored definitions.
    let again = validate::validate(&stored, &Value::Object(filled.clone()));
    assert_eq!(again.as_ref(), Ok(&filled), "defaults filled in by validation do not validate to themselves");
    filled
}
