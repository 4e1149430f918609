//! Fault injection for reliability tests: per-method failure rates (the call answers INTERNAL,
//! or its connection is dropped), a global rate of dropped connections, and a fixed latency.
//!
//! Every decision is a pure function of the seed, the method and how many calls of that method
//! came before (counted per method), so a run with the same seed and the same calls fails the
//! same calls, however calls of different methods interleave.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What an injected failure does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The call is not run and answers `[false, "...", INTERNAL (0x2000), -1]`.
    Internal,
    /// The call runs, then the connection is closed without an answer: the client cannot tell
    /// whether it took effect (the case adoption by name exists for).
    Drop,
}

/// Fails `rate` (0.0–1.0) of the calls whose method matches `pattern`: a method name whose
/// dot-separated parts may be `*` (`one.*.allocate`), or `*` alone for every method.
#[derive(Debug, Clone, PartialEq)]
pub struct FailRule {
    pub pattern: String,
    pub rate: f64,
    pub effect: Effect,
}

impl FailRule {
    /// Parses the `--fail-rate` form `METHOD=RATE` (INTERNAL) or `METHOD=RATE:drop`.
    pub fn parse(spec: &str) -> Result<FailRule, String> {
        let (pattern, rest) = spec.split_once('=').ok_or_else(|| {
            format!("fail rate '{spec}' has no '=': write METHOD=RATE, e.g. one.vn.allocate=0.5 or one.*.info=0.2:drop")
        })?;
        let (rate, effect) = match rest.split_once(':') {
            None => (rest, Effect::Internal),
            Some((rate, "drop")) => (rate, Effect::Drop),
            Some((rate, "internal")) => (rate, Effect::Internal),
            Some((_, other)) => {
                return Err(format!("unknown effect '{other}' in '{spec}': use ':internal' or ':drop'"));
            }
        };
        let rate = parse_rate(rate).map_err(|e| format!("{e} in '{spec}'"))?;
        if pattern.is_empty() {
            return Err(format!("fail rate '{spec}' names no method: write METHOD=RATE"));
        }
        Ok(FailRule { pattern: pattern.to_string(), rate, effect })
    }
}

/// A probability between 0 and 1.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        Ok(_) | Err(_) => Err(format!("rate '{text}' is not a number between 0 and 1")),
    }
}

/// The faults a [`super::Sim`] injects. The default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Makes the failures repeatable: the same seed fails the same calls.
    pub seed: u64,
    /// Checked in order; the first rule matching a method decides its failures.
    pub rules: Vec<FailRule>,
    /// Rate of calls of any method whose connection is dropped after the call ran.
    pub drop_rate: f64,
    /// Added before every answer, to exercise clients' timeouts and progress reporting.
    pub latency: Duration,
}

/// The per-method call counters behind the decisions.
#[derive(Debug, Default)]
pub(super) struct Dice {
    counts: Mutex<HashMap<String, u64>>,
}

impl Dice {
    /// Whether this call of `method` fails, and how. Counts the call.
    pub fn roll(&self, faults: &Faults, method: &str) -> Option<Effect> {
        if faults.drop_rate <= 0.0 && faults.rules.is_empty() {
            return None;
        }
        let n = {
            let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = counts.entry(method.to_string()).or_insert(0);
            *count += 1;
            *count
        };
        let key = faults.seed ^ fnv1a(method.as_bytes()) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if unit(splitmix64(key)) < faults.drop_rate {
            return Some(Effect::Drop);
        }
        let rule = faults.rules.iter().find(|rule| matches(&rule.pattern, method))?;
        (unit(splitmix64(key ^ 0xA5A5_A5A5_A5A5_A5A5)) < rule.rate).then_some(rule.effect)
    }
}

/// Dotted patterns: `*` stands for one segment (`one.*.info`), and a final `*` for all the
/// remaining ones (`one.*` matches `one.vn.allocate`; a lone `*` matches every method).
fn matches(pattern: &str, method: &str) -> bool {
    let (mut p, mut m) = (pattern.split('.').peekable(), method.split('.'));
    loop {
        match (p.next(), m.next()) {
            (None, None) => return true,
            (Some("*"), Some(_)) if p.peek().is_none() => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            (Some(_), Some(_)) | (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// FNV-1a: a stable hash (std's hasher may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from the top 53 bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(seed: u64, spec: &str) -> Faults {
        Faults { seed, rules: vec![FailRule::parse(spec).unwrap()], ..Faults::default() }
    }

    fn pattern(faults: &Faults, method: &str, calls: usize) -> Vec<bool> {
        let dice = Dice::default();
        (0..calls).map(|_| dice.roll(faults, method).is_some()).collect()
    }

    #[test]
    fn patterns_match_by_segment_and_a_final_star_takes_the_rest() {
        for (pattern, method, expected) in [
            ("*", "one.vn.allocate", true),
            ("one.*", "one.vn.allocate", true),
            ("one.*", "one.system.version", true),
            ("one.*", "one", false),
            ("one.*.info", "one.vn.info", true),
            ("one.*.info", "one.vn.allocate", false),
            ("one.*.info", "one.vnpool.info.extra", false),
            ("one.vn.allocate", "one.vn.allocate", true),
            ("one.vn", "one.vn.allocate", false),
        ] {
            assert_eq!(matches(pattern, method), expected, "{pattern} vs {method}");
        }
    }

    #[test]
    fn the_same_seed_fails_the_same_calls_and_rates_are_roughly_kept() {
        let half = faults(7, "one.*.allocate=0.5");
        let first = pattern(&half, "one.vn.allocate", 400);
        assert_eq!(first, pattern(&half, "one.vn.allocate", 400));
        assert_ne!(first, pattern(&faults(8, "one.*.allocate=0.5"), "one.vn.allocate", 400));
        let failed = first.iter().filter(|f| **f).count();
        assert!((150..250).contains(&failed), "{failed} of 400 failed at rate 0.5");
        assert!(pattern(&half, "one.vn.info", 50).iter().all(|f| !f));
        assert!(pattern(&faults(7, "*=1"), "one.vn.info", 50).iter().all(|f| *f));
    }

    #[test]
    fn drop_rate_and_effects() {
        let dice = Dice::default();
        let drops = Faults { drop_rate: 1.0, ..Faults::default() };
        assert_eq!(dice.roll(&drops, "one.vn.info"), Some(Effect::Drop));
        assert_eq!(dice.roll(&faults(1, "one.vn.info=1:drop"), "one.vn.info"), Some(Effect::Drop));
        assert_eq!(dice.roll(&faults(1, "one.vn.info=1:internal"), "one.vn.info"), Some(Effect::Internal));
        assert_eq!(dice.roll(&Faults::default(), "one.vn.info"), None);
    }

    #[test]
    fn bad_specs_say_how_to_write_them() {
        for spec in ["one.vn.info", "one.vn.info=2", "one.vn.info=x", "=0.5", "one.vn.info=0.5:later"] {
            assert!(FailRule::parse(spec).is_err(), "{spec}");
        }
        assert!(FailRule::parse("one.vn.info").unwrap_err().contains("METHOD=RATE"));
    }
}
