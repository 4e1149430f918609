//! Mutated driver files never panic the loader and always end in ERROR with a message; the
//! files formwork does not parse cannot break a driver; and the coverage-guided fuzz corpus
//! (`tests/fixtures/fuzz-corpus/`, see docs/fuzzing.md) replays through the fuzz targets'
//! own harness.
//!
//! Which files are mutated, decided per file of a driver folder:
//! - mutated, because formwork parses them: `driver.conf` (YAML), `terraform/variables.tf`,
//!   `terraform/provider.tf`, `terraform/validators.tf` (HCL → inputs and match rules),
//!   `terraform/outputs.tf` (HCL, must declare `provisioned_hosts`) and every
//!   `ansible/templates/*.j2` (metadata YAML, Jinja2 syntax, the inventory YAML for
//!   `one_objects`);
//! - not mutated, because formwork only checks that they exist (`driver/verify.rs`) and hands
//!   them to the tools that read them: `terraform/main.tf` (Terraform), `ansible/ansible.cfg`
//!   (Ansible's INI configuration), `ansible/site.yaml` (the playbook, which Ansible checks)
//!   and `ansible/inventory.yaml` (the `plugin: opennebula_form` line for OneForm's inventory
//!   plugin; formwork renders its own inventory from the template). Parsing them would make
//!   formwork refuse drivers that OneForm accepts for reasons only the tools can judge.
//!   [`unparsed_files_never_break_a_driver`] holds that decision in place.
//!
//! Each run of the mutation test takes a fresh seed, printed on stderr first; `FUZZ_SEED=<n>`
//! replays a run and `FUZZ_ITERATIONS=<n>` makes it longer. A failure names the seed, file and
//! iteration.

// FUZZ_SEED and FUZZ_ITERATIONS let a run be replayed or lengthened.
#![allow(clippy::disallowed_methods)]

mod common;

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use formwork::driver::{Catalog, Loaded, State};

/// The files formwork parses, relative to the driver folder; the templates are added per driver.
const PARSED: [&str; 5] = [
    "driver.conf",
    "terraform/outputs.tf",
    "terraform/provider.tf",
    "terraform/validators.tf",
    "terraform/variables.tf",
];

/// The files formwork only requires to exist.
const UNPARSED: [&str; 4] = ["terraform/main.tf", "ansible/ansible.cfg", "ansible/inventory.yaml", "ansible/site.yaml"];

/// xorshift64*: small, seedable, good enough to spread mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that matter to HCL, YAML and Jinja, so mutations reach deep into the parsers.
const SYNTAX: &[u8] = b"{}[]()\"'#%=:-|>\n\t\\$<*&!,.0123456789";

fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.below(5) {
        0 => (0..rng.below(2048)).map(|_| rng.next() as u8).collect(),
        1 => {
            for _ in 0..=rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
            bytes
        }
        2 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, SYNTAX[rng.below(SYNTAX.len())]);
            }
            bytes
        }
        3 => {
            bytes.truncate(rng.below(bytes.len() + 1));
            bytes
        }
        _ => {
            // Splice a chunk of the file somewhere else: duplicated blocks, unbalanced nesting.
            let len = bytes.len().max(1);
            let (a, b) = (rng.below(len), rng.below(len));
            let (from, to) = (a.min(b), a.max(b).min(bytes.len()));
            let chunk = bytes[from..to].to_vec();
            let at = rng.below(bytes.len() + 1);
            bytes.splice(at..at, chunk);
            bytes
        }
    }
}

/// `FUZZ_SEED` if set (decimal or 0x-hex), else a fresh one from the process's random hasher keys.
fn seed() -> u64 {
    match std::env::var("FUZZ_SEED") {
        Ok(text) => {
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("FUZZ_SEED={text} is not a number: {e}"))
        }
        Err(_) => RandomState::new().hash_one(std::time::SystemTime::now()),
    }
}

/// The parsed files of the driver at `dir`, in a stable order so a seed replays anywhere.
fn parsed_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = PARSED.iter().map(|f| f.to_string()).collect();
    let mut templates: Vec<String> = fs::read_dir(dir.join("ansible/templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".j2"))
        .map(|name| format!("ansible/templates/{name}"))
        .collect();
    templates.sort();
    files.extend(templates);
    files
}

/// What one sync-and-load of the driver gave, or the panic's message.
fn sync_and_load(catalog: &Catalog) -> Result<Loaded, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        catalog.sync().expect("sync reads the states directory");
        catalog.load("sim").expect("the driver is found")
    }));
    outcome.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or(panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn mutated_driver_files_never_panic_and_always_explain() {
    let seed = seed();
    eprintln!("driver_fuzz: FUZZ_SEED={seed:#x} (set it to replay this run)");
    let iterations: usize = std::env::var("FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let home = common::Home::empty();
    let dir = home.add_driver("sim", "sim");
    let files = parsed_files(&dir);
    assert!(files.iter().any(|f| f.ends_with(".j2")), "the sim driver has a deployment template: {files:?}");
    let catalog = Catalog::open(&home.builtin, &[], home.data_dir().join("states")).unwrap();
    let mut rng = Rng(seed);
    let (mut broken, mut loaded) = (0, 0);
    for file in &files {
        let original = fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for i in 0..iterations {
            let replay = || format!("FUZZ_SEED={seed:#x}, file {file}, iteration {i}");
            fs::write(dir.join(file), mutate(&original, &mut rng)).unwrap();
            match sync_and_load(&catalog).unwrap_or_else(|panic| panic!("panic ({panic}): {}", replay())) {
                Loaded::Broken(b) => {
                    broken += 1;
                    assert_eq!(b.state, State::Error, "{}", replay());
                    let msg = b.error_msg.unwrap_or_default();
                    assert!(!msg.trim().is_empty(), "empty error: {}", replay());
                }
                Loaded::Ready(_) => loaded += 1,
            }
        }
        fs::write(dir.join(file), &original).unwrap();
    }
    // The mutations must actually reach the checks: most of them break the driver.
    assert!(broken > loaded, "only {broken} of {} mutations broke the driver", broken + loaded);
    let Loaded::Ready(_) = sync_and_load(&catalog).unwrap() else { panic!("the restored driver loads again") };
}

#[test]
fn unparsed_files_never_break_a_driver() {
    let home = common::Home::empty();
    let dir = home.add_driver("sim", "sim");
    let catalog = Catalog::open(&home.builtin, &[], home.data_dir().join("states")).unwrap();
    for file in UNPARSED {
        assert!(dir.join(file).is_file(), "the sim driver has {file}");
        // Invalid UTF-8, unbalanced HCL, YAML and INI: nothing a parser would accept.
        fs::write(dir.join(file), b"\xff\xfe{{ [ \"\n: - :\n[section\n").unwrap();
    }
    match sync_and_load(&catalog).unwrap() {
        Loaded::Ready(d) => assert_eq!(d.state, State::Enabled),
        Loaded::Broken(b) => panic!("a file formwork does not parse broke the driver: {:?}", b.error_msg),
    }
    fs::remove_file(dir.join(UNPARSED[0])).unwrap();
    let Loaded::Broken(b) = sync_and_load(&catalog).unwrap() else { panic!("a missing main.tf is an error") };
    assert!(b.error_msg.unwrap_or_default().contains("terraform/main.tf is missing"));
}

/// What the fuzz targets found, kept in the corpus under these names, and the refusal each gives
/// now (`None`: accepted, every property the harness checks holding).
const FINDINGS: [(&str, &str, Option<&str>); 5] = [
    // hcl-edit retries a failing operand after a binary operator, doubling the work per nested
    // object: this 772-byte file took 36 s in release; `terraform::parse` now refuses it first.
    ("hcl_inputs", "timeout-nested-objects-double-parse-time", Some("nested more than 16 levels deep")),
    // `min = 2/0` in validators.tf: hcl-rs's evaluation asserted a finite result and panicked.
    ("hcl_inputs", "crash-division-by-zero-in-validators", Some("must be a literal value, not an operation")),
    // A `{6501196262088609336}` count in a `string` rule: fancy-regex's size analysis overflowed.
    ("hcl_inputs", "crash-regex-repeat-count-overflows-fancy-regex", Some("repeats too much")),
    // `default = 1333…3` (51 digits) read back from a stored body one digit off, until serde_json
    // parsed floats with `float_roundtrip`.
    ("hcl_inputs", "crash-float-default-changes-when-stored", None),
    // `{{{…}}}` 38 deep in a template's metadata: each mapping key written as JSON text held its
    // own key as escaped JSON text, doubling per level (39 s and 2 GB before running out).
    ("j2_metadata", "oom-nested-mapping-keys-double-as-json", Some("keys must be text")),
];

/// Every file of the fuzz corpus, seeds and kept findings, replays through the harness; each
/// finding gives the refusal that fixed it.
#[test]
fn the_fuzz_corpus_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-corpus");
    for (target, run) in harness::TARGETS {
        let mut paths: Vec<_> = fs::read_dir(root.join(target)).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        assert!(paths.len() >= 3, "{target}: the seed corpus holds at least three inputs: {paths:?}");
        let (mut accepted, mut refused) = (0, 0);
        for path in &paths {
            let data = fs::read(path).unwrap();
            match catch_unwind(|| run(&data)) {
                Ok(harness::Outcome::Accepted) => accepted += 1,
                Ok(harness::Outcome::Refused(message)) => {
                    assert!(!message.trim().is_empty(), "{target}: {} is refused without a reason", path.display());
                    refused += 1;
                }
                Ok(harness::Outcome::Skipped) => {}
                Err(_) => panic!("{target}: {} panics the harness", path.display()),
            }
        }
        // The seeds are real driver files, so some must be accepted.
        assert!(accepted > 0, "{target}: no corpus input was accepted ({refused} refused)");
    }
    for (target, name, expected) in FINDINGS {
        let data = fs::read(root.join(target).join(name)).unwrap();
        let run = harness::TARGETS.iter().find(|(t, _)| *t == target).unwrap().1;
        match (run(&data), expected) {
            (harness::Outcome::Refused(message), Some(expected)) => {
                assert!(message.contains(expected), "{name}: {message}")
            }
            (harness::Outcome::Accepted, None) => {}
            (other, expected) => panic!("{name}: expected a refusal containing {expected:?}, got {other:?}"),
        }
    }
}
