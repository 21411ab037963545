//! The README's configuration reference names every key the loader accepts.

const RAW: &str = include_str!("../src/config/raw.rs");
/// The notifier sections beyond Slack and SNS keep their raw structs next to their checks.
const NOTIFIERS: &str = include_str!("../src/config/notifiers.rs");
const README: &str = include_str!("../../../README.md");

/// Whether `word` occurs in `text` with no identifier character on either side.
fn contains_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn readme_configuration_reference_names_every_key() {
    let reference = README
        .split("## Configuration reference")
        .nth(1)
        .expect("README has a Configuration reference section");
    let missing: Vec<&str> = RAW
        .lines()
        .chain(NOTIFIERS.lines())
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| rest.split_once(": Option<").map(|(field, _)| field))
        .filter(|field| !contains_word(reference, field))
        .collect();
    assert!(
        missing.is_empty(),
        "README configuration reference misses: {missing:?}"
    );
}
