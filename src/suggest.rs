//! "Did you mean" suggestions for names typed by people (drivers, inputs, deployments).

/// The closest candidate within a small edit distance (Levenshtein, case ignored), if any;
/// the first of equally close ones.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (typed.chars().count() / 3).max(2);
    let typed = typed.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&typed, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean 'x'?)` or nothing.
pub fn hint<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, candidates).map(|c| format!(" (did you mean '{c}'?)")).unwrap_or_default()
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
    }
}
