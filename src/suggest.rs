//! "Did you mean" suggestions for names typed by people (drivers, inputs, deployments).

/// The closest candidate within a small edit distance, if any.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (distance(&typed.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean 'x'?)` or nothing.
pub fn hint<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, candidates).map(|c| format!(" (did you mean '{c}'?)")).unwrap_or_default()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested_and_far_ones_not() {
        assert_eq!(closest("instnce_type", ["instance_type", "region"]), Some("instance_type"));
        assert_eq!(closest("oneform_host", ["oneform_hosts", "oneform_tags"]), Some("oneform_hosts"));
        assert_eq!(closest("xyz", ["instance_type", "region"]), None);
        assert_eq!(hint("Sim", ["sim"]), " (did you mean 'sim'?)");
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
