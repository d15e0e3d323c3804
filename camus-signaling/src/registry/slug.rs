//! Room slugs: the room's name reduced to what a URL path segment holds without escaping.

/// The longest slug made from a name, before a `-2`, `-3`… suffix.
pub(crate) const MAX_SLUG_LEN: usize = 64;

/// The slug of a name that has no ASCII letter or digit.
pub(crate) const EMPTY_NAME_SLUG: &str = "room";

/// Lowercase ASCII letters and digits of `name`, each run of anything else (spaces,
/// punctuation, non-ASCII letters: there is no transliteration) one `-`, none at either end;
/// at most [`MAX_SLUG_LEN`] characters, cut at a word boundary when there is one.
pub(crate) fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len().min(MAX_SLUG_LEN));
    let mut gap = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            gap = true;
            continue;
        }
        let dash = gap && !slug.is_empty();
        if slug.len() + usize::from(dash) + 1 > MAX_SLUG_LEN {
            // Mid-word: drop the word's start rather than keep half of it.
            if !gap && let Some(boundary) = slug.rfind('-') {
                slug.truncate(boundary);
            }
            break;
        }
        if dash {
            slug.push('-');
        }
        slug.push(c.to_ascii_lowercase());
        gap = false;
    }
    if slug.is_empty() {
        slug.push_str(EMPTY_NAME_SLUG);
    }
    slug
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn names_become_lowercase_words_joined_by_dashes() {
        for (name, slug) in [
            ("Excellent Adventure", "excellent-adventure"),
            (
                "  Bill & Ted's   Excellent -- Adventure!! ",
                "bill-ted-s-excellent-adventure",
            ),
            ("ROOM42", "room42"),
            ("a--b__c", "a-b-c"),
            ("Café Ünïcode", "caf-n-code"),
            ("-leading and trailing-", "leading-and-trailing"),
        ] {
            assert_eq!(slugify(name), slug, "{name:?}");
        }
    }

    #[test]
    fn a_name_without_letters_or_digits_is_room() {
        for name in ["", "   ", "!!!", "日本語", "---"] {
            assert_eq!(slugify(name), "room", "{name:?}");
        }
    }

    #[test]
    fn long_names_are_cut_without_a_trailing_dash() {
        let long = "x".repeat(200);
        assert_eq!(slugify(&long), "x".repeat(MAX_SLUG_LEN));
        let words = format!("{} yz", "a".repeat(MAX_SLUG_LEN - 2));
        assert_eq!(slugify(&words), "a".repeat(MAX_SLUG_LEN - 2));
        assert!(!slugify(&words).ends_with('-'));
        let exact = format!("{} y", "a".repeat(MAX_SLUG_LEN - 2));
        assert_eq!(
            slugify(&exact),
            format!("{}-y", "a".repeat(MAX_SLUG_LEN - 2))
        );
        let next = format!("{} y z", "a".repeat(MAX_SLUG_LEN - 2));
        assert_eq!(
            slugify(&next),
            format!("{}-y", "a".repeat(MAX_SLUG_LEN - 2))
        );
    }
}
