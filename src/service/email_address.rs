//! Email addresses as the service stores and compares them.

/// Trims and lowercases an email address: the one form it is stored and compared in.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
