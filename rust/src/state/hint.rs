//! "Did you mean ...?" for misspelled keys and values.
//!
//! serde reports an unknown key or enum value as
//! ``unknown field `adress`, expected one of `ip`, `prefix-length` `` (or "expected `a` or
//! `b`", or "expected `a`"). The closest candidate, by case-insensitive match first and
//! then by edit distance, is named as a hint.

/// Returns the hint (` (did you mean `x`?)`) for a serde "unknown field/variant" message,
/// or `None` when the message is not one or nothing is close.
pub(crate) fn did_you_mean(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("unknown variant `"))?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let candidates: Vec<&str> = expected
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    let best = closest(unknown, &candidates)?;
    Some(format!(" (did you mean `{best}`?)"))
}

fn closest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = unknown.to_lowercase().replace('_', "-");
    if let Some(c) = candidates.iter().find(|c| c.to_lowercase() == lower) {
        return Some(c);
    }
    let limit = if unknown.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (levenshtein(&lower, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        let m = "unknown variant `Subflow`, expected one of `signal`, `subflow`, `backup`, \
                 `fullmesh`, `implicit`, `laminar`";
        assert_eq!(
            did_you_mean(m).as_deref(),
            Some(" (did you mean `subflow`?)")
        );
        let m = "unknown field `adress`, expected one of `enabled`, `dhcp`, `address`";
        assert_eq!(
            did_you_mean(m).as_deref(),
            Some(" (did you mean `address`?)")
        );
        let m = "unknown field `address_flags`, expected `address-flags`";
        assert_eq!(
            did_you_mean(m).as_deref(),
            Some(" (did you mean `address-flags`?)")
        );
        let m = "unknown variant `bogus`, expected one of `signal`, `subflow`, `backup`, \
                 `fullmesh`, `implicit`, `laminar`";
        assert_eq!(did_you_mean(m), None);
        let m = "unknown variant `kernal`, expected `kernel` or `userspace`";
        assert_eq!(
            did_you_mean(m).as_deref(),
            Some(" (did you mean `kernel`?)")
        );
        assert_eq!(did_you_mean("invalid type: string"), None);
    }
}
