//! Target globs: `[verifiers.NAME] targets` and `[contracts."GLOB"]` name
//! qualified target names with `*` standing for any run of characters.

/// Whether `target` matches `glob`, where `*` stands for any run of
/// characters and everything else for itself.
pub fn glob_matches(glob: &str, target: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = target.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches("*", "fetch.get"));
        assert!(glob_matches("fetch.*", "fetch.get"));
        assert!(glob_matches("*.get", "fetch.get"));
        assert!(glob_matches("f*h.g*t", "fetch.get"));
        assert!(glob_matches("fetch.get", "fetch.get"));
        assert!(!glob_matches("fetch.get", "fetch.gets"));
        assert!(!glob_matches("fetch.*", "files.read"));
        assert!(!glob_matches("*.get", "fetch.put"));
        assert!(!glob_matches("a*a", "a"));
    }
}
