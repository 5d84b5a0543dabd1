//! Username rules (Django's `UnicodeUsernameValidator`) and allauth-style generation.

pub const MAX_LENGTH: usize = 150;

/// Django's `^[\w.@+-]+\Z`, where `\w` is any Unicode letter, digit or underscore.
pub fn is_valid(username: &str) -> bool {
    !username.is_empty()
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '+' | '-'))
}

/// The base of a generated username: the email's local part with only allowed characters,
/// lowercased, shortened; `user` when nothing is left (as allauth does).
pub fn base_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let base: String = local
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
        .flat_map(char::to_lowercase)
        .take(30)
        .collect();
    if base.is_empty() { "user".into() } else { base }
}

/// The first of `base`, `base2`, `base3`, ... not among `taken` (compared case-insensitively).
pub fn first_free(base: &str, taken: &[String]) -> String {
    let taken: std::collections::HashSet<String> = taken.iter().map(|t| t.to_lowercase()).collect();
    std::iter::once(base.to_owned())
        .chain((2..).map(|n| format!("{base}{n}")))
        .find(|candidate| !taken.contains(&candidate.to_lowercase()))
        .expect("an unbounded sequence has a free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_username_alphabet() {
        for ok in ["alice", "Bob_1", "a.b@c+d-e", "élodie", "用户"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "has space", "semi;colon", "slash/", "quote'"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn generated_base_comes_from_the_local_part() {
        assert_eq!(
            base_from_email("John.Smith+tag@example.com"),
            "john.smith+tag"
        );
        assert_eq!(base_from_email("!!!@example.com"), "user");
        assert!(is_valid(&base_from_email("weird'name@example.com")));
    }

    #[test]
    fn first_free_skips_taken_names_case_insensitively() {
        assert_eq!(first_free("alice", &[]), "alice");
        let taken = vec!["Alice".to_owned(), "alice2".to_owned()];
        assert_eq!(first_free("alice", &taken), "alice3");
    }
}
