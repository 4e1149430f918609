//! Masking of secrets in text that leaves formwork: child output, notes, command lines and
//! error messages. Every line passes through a [`Masker`] before it reaches a sink, a log
//! file or an error, so a secret a tool echoes (a password in a Terraform error, a token on
//! an Ansible command line) is never written down.

use std::borrow::Cow;

/// What a secret is replaced with. Fixed length, so the mask says nothing about the secret.
pub const MASK: &str = "********";

/// Secrets shorter than this are not masked: masking "a" or "10" would blank out ordinary
/// words and numbers all over the log and protect nothing.
pub const MIN_SECRET_CHARS: usize = 3;

/// A set of secret strings, masked wherever they occur.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, without duplicates: a secret that contains another is found whole.
    secrets: Vec<String>,
}

impl Masker {
    /// Builds a masker from `secrets`, ignoring empty and too short ones. A multi-line secret
    /// (a private key) is also added line by line, because output is masked one line at a
    /// time and such a secret never appears whole in one line.
    pub fn new<I, S>(secrets: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut masker = Masker::default();
        for secret in secrets {
            masker.add(secret.as_ref());
        }
        masker
    }

    /// Adds one secret (and each of its lines, for a multi-line one).
    pub fn add(&mut self, secret: &str) {
        let lines = secret.lines().map(|l| l.trim_end_matches('\r'));
        for candidate in std::iter::once(secret).chain(lines) {
            if candidate.chars().count() >= MIN_SECRET_CHARS && !self.secrets.iter().any(|s| s == candidate) {
                self.secrets.push(candidate.to_string());
            }
        }
        self.secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    /// Adds every secret of `other`.
    pub fn merge(&mut self, other: &Masker) {
        for secret in &other.secrets {
            self.add(secret);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every occurrence of every secret replaced by [`MASK`]. Occurrences that
    /// overlap (two secrets sharing characters, or one secret repeating into itself) are
    /// masked as one span, so no character of any secret survives.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            out.push_str(&text[at..start]);
            out.push_str(MASK);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Byte ranges of all occurrences of all secrets, sorted and merged where they overlap
    /// or touch.
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        for secret in &self.secrets {
            let mut from = 0;
            while let Some(pos) = text[from..].find(secret.as_str()) {
                let start = from + pos;
                found.push((start, start + secret.len()));
                // Step one character on, not past the match, to catch overlapping repeats.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence() {
        let m = Masker::new(["s3cret"]);
        assert_eq!(m.mask("a s3cret and s3cret."), "a ******** and ********.");
    }

    #[test]
    fn text_without_secrets_is_borrowed_unchanged() {
        let m = Masker::new(["s3cret"]);
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed("nothing here")));
    }

    #[test]
    fn empty_and_short_secrets_are_ignored() {
        let m = Masker::new(["", "a", "10"]);
        assert!(m.is_empty());
        assert_eq!(m.mask("a 10 b"), "a 10 b");
        // Three characters is enough, counted as characters, not bytes.
        let m = Masker::new(["é1"]);
        assert!(m.is_empty());
        assert_eq!(Masker::new(["abc"]).mask("xabcx"), "x********x");
    }

    #[test]
    fn longest_secret_wins_over_a_secret_it_contains() {
        // Given shortest first on purpose: "pass" must not be masked first, which would leave
        // "word123" readable.
        let m = Masker::new(["pass", "password123"]);
        assert_eq!(m.mask("pw=password123;"), "pw=********;");
        assert_eq!(m.mask("pass alone"), "******** alone");
    }

    #[test]
    fn overlapping_secrets_leave_no_character_of_either() {
        let m = Masker::new(["abcdef", "defghi"]);
        assert_eq!(m.mask("xxabcdefghixx"), "xx********xx");
        let m = Masker::new(["aaa"]);
        assert_eq!(m.mask("baaaab"), "b********b");
    }

    #[test]
    fn adjacent_secrets_become_one_mask() {
        let m = Masker::new(["key1", "key2"]);
        assert_eq!(m.mask("key1key2 key1"), "******** ********");
    }

    #[test]
    fn multi_line_secrets_are_masked_line_by_line() {
        let key = "-----BEGIN KEY-----\r\nMIIEabcdef\n-----END KEY-----";
        let m = Masker::new([key]);
        assert_eq!(m.mask("MIIEabcdef"), MASK);
        assert_eq!(m.mask(key), MASK);
    }

    #[test]
    fn secrets_with_multibyte_characters() {
        let m = Masker::new(["pässwörd"]);
        assert_eq!(m.mask("ü pässwörd ü"), "ü ******** ü");
    }

    #[test]
    fn merge_keeps_longest_first() {
        let mut m = Masker::new(["tok"]);
        m.merge(&Masker::new(["token-xyz"]));
        assert_eq!(m.mask("token-xyz tok"), "******** ********");
    }
}
