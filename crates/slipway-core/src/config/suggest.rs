//! "Did you mean …?": finds the known word a mistyped one was probably meant to be.

/// The candidate closest to `wrong` when it is close enough to be a likely typo, else `None`.
///
/// Compares without regard to case, `-`/`_` or spaces. A candidate contained in the wrong word
/// (`bake_time` → `bake`) also counts, so longer spellings of a known key find it.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_norm = normalize(wrong);
    if wrong_norm.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let norm = normalize(candidate);
        let mut score = strsim::normalized_damerau_levenshtein(&wrong_norm, &norm);
        if score < MIN_SIMILARITY
            && norm.len() >= 3
            && wrong_norm.len() > norm.len()
            && wrong_norm.contains(&norm)
        {
            // Ranked below any real typo match but above nothing.
            score = MIN_SIMILARITY;
        }
        if score >= MIN_SIMILARITY && best.is_none_or(|(best_score, _)| score > best_score) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The time zone name closest to `wrong`, comparing against whole names (`America/New_York`)
/// and their last part (`New_York`), so `New York` and `America/New_Yrok` both find it.
pub(crate) fn closest_time_zone(wrong: &str) -> Option<String> {
    let wrong_norm = normalize(wrong);
    if wrong_norm.is_empty() {
        return None;
    }
    let mut best: Option<(f64, String)> = None;
    for name in jiff::tz::db().available() {
        let name = name.as_str();
        let full = normalize(name);
        let last = normalize(name.rsplit('/').next().unwrap_or(name));
        let score = strsim::normalized_damerau_levenshtein(&wrong_norm, &full)
            .max(strsim::normalized_damerau_levenshtein(&wrong_norm, &last));
        if score >= MIN_TIME_ZONE_SIMILARITY && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, name.to_owned()));
        }
    }
    best.map(|(_, name)| name)
}

/// Below this similarity (0 = nothing in common, 1 = equal) a word is not suggested:
/// `bak` → `bake` is 0.75, `min` → `max` is 0.33.
const MIN_SIMILARITY: f64 = 0.6;

/// Time zone names are long and share prefixes (`America/`), so they need to be closer.
const MIN_TIME_ZONE_SIMILARITY: f64 = 0.75;

fn normalize(word: &str) -> String {
    word.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_intended_word_and_strangers_find_nothing() {
        let keys = ["bake", "canary", "checks", "approvals", "go_no_go"];
        assert_eq!(closest("bak", keys), Some("bake"));
        assert_eq!(closest("Approval", keys), Some("approvals"));
        assert_eq!(closest("bake_time", keys), Some("bake"));
        assert_eq!(closest("go-no-go", keys), Some("go_no_go"));
        assert_eq!(closest("xyz", keys), None);
        assert_eq!(closest("min", ["max"]), None);
    }

    #[test]
    fn time_zone_typos_find_the_iana_name() {
        assert_eq!(
            closest_time_zone("America/New_Yrok").as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            closest_time_zone("New York").as_deref(),
            Some("America/New_York")
        );
        assert_eq!(closest_time_zone("Mars/Olympus"), None);
    }
}
