//! Environment tables: ordered `KEY=VALUE` lists, as Upstart keeps them.

/// The key of an entry (`KEY` of `KEY=VALUE`, or the whole bare entry).
pub fn key_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Value of `key`, if set.
pub fn get<'a>(table: &'a [String], key: &str) -> Option<&'a str> {
    table
        .iter()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// `path` (a `PATH` value) with `dir` put first, unless it is already
/// one of its directories.
pub fn path_starting_with(path: &str, dir: &str) -> String {
    if dir.is_empty() || path.split(':').any(|d| d == dir) {
        path.to_string()
    } else if path.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}:{path}")
    }
}

/// Set an entry, replacing an existing one with the same key in place.
pub fn set(table: &mut Vec<String>, entry: String) {
    let key = key_of(&entry);
    // `key` holds no `=`: an entry has it as its key if it starts with it
    // and goes on with `=` or not at all (no search through every value).
    let has_key = |e: &str| {
        e.strip_prefix(key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
    };
    match table.iter().position(|e| has_key(e)) {
        Some(i) => {
            if let Some(slot) = table.get_mut(i) {
                *slot = entry;
            }
        }
        None => table.push(entry),
    }
}

/// Add an entry only if its key is not present yet.
pub fn add_if_absent(table: &mut Vec<String>, entry: String) {
    if get(table, key_of(&entry)).is_none() {
        table.push(entry);
    }
}

/// Remove every entry with `key`.
pub fn unset(table: &mut Vec<String>, key: &str) {
    table.retain(|e| key_of(e) != key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_goes_first_in_path_once() {
        assert_eq!(
            path_starting_with("/usr/bin:/bin", "/opt/o"),
            "/opt/o:/usr/bin:/bin"
        );
        assert_eq!(path_starting_with("/usr/bin:/bin", "/bin"), "/usr/bin:/bin");
        assert_eq!(path_starting_with("", "/opt/o"), "/opt/o");
        assert_eq!(path_starting_with("/bin", ""), "/bin");
    }

    #[test]
    fn replace_semantics() {
        let mut t = vec!["A=1".to_string(), "B=2".to_string()];
        set(&mut t, "A=3".into());
        set(&mut t, "C=4".into());
        add_if_absent(&mut t, "B=9".into());
        add_if_absent(&mut t, "D=5".into());
        assert_eq!(t, ["A=3", "B=2", "C=4", "D=5"]);
        assert_eq!(get(&t, "C"), Some("4"));
        assert_eq!(get(&t, "AB"), None);
        unset(&mut t, "A");
        assert_eq!(t, ["B=2", "C=4", "D=5"]);
    }

    #[test]
    fn keys_match_whole() {
        let mut t = vec!["AB=1".to_string(), "A".to_string(), "C=x=y".to_string()];
        set(&mut t, "A=2".into());
        set(&mut t, "ABC=3".into());
        set(&mut t, "C=z".into());
        set(&mut t, "AB".into());
        assert_eq!(t, ["AB", "A=2", "C=z", "ABC=3"]);
    }
}
