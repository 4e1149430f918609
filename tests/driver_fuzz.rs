//! Arbitrary bytes in any driver file never panic the loader and always end in ERROR with a
//! message. A seeded generator keeps every run repeatable; a failure prints the seed, file and
//! iteration to replay.

// FUZZ_SEED and FUZZ_ITERATIONS let a longer or different run be asked for.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;

use formwork::driver::{Catalog, Loaded, State};

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

#[test]
fn mutated_driver_files_never_panic_and_always_explain() {
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_F0F0);
    let iterations: usize = std::env::var("FUZZ_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let home = common::Home::empty();
    let dir = home.add_driver("sim", "sim");
    let files: Vec<String> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    assert!(files.len() >= 10, "the sim driver should have all its files: {files:?}");
    let catalog = Catalog::open(&home.builtin, &[], home.data_dir().join("states")).unwrap();
    let mut rng = Rng(seed);
    let (mut broken, mut loaded) = (0, 0);
    for file in &files {
        let original = fs::read(dir.join(file)).unwrap();
        for i in 0..iterations {
            fs::write(dir.join(file), mutate(&original, &mut rng)).unwrap();
            catalog.sync().unwrap();
            let outcome = std::panic::catch_unwind(|| catalog.load("sim"));
            let result = outcome.unwrap_or_else(|_| panic!("panic: seed {seed:#x}, file {file}, iteration {i}"));
            match result.unwrap() {
                Loaded::Broken(b) => {
                    broken += 1;
                    assert_eq!(b.state, State::Error);
                    let msg = b.error_msg.unwrap_or_default();
                    assert!(!msg.trim().is_empty(), "empty error: seed {seed:#x}, file {file}, iteration {i}");
                }
                Loaded::Ready(_) => loaded += 1,
            }
        }
        fs::write(dir.join(file), &original).unwrap();
    }
    // The mutations must actually reach the checks: most of them break the driver.
    assert!(broken > loaded, "only {broken} of {} mutations broke the driver", broken + loaded);
}
