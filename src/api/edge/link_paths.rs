//! Where the pages behind the links in emails live (`api::email_link_pages`): their paths
//! carry a secret, so the edge knows them whether or not the pages are served (CSRF, headers,
//! the access log). Here, below both, so that neither reaches up to the other.

use std::borrow::Cow;

/// The paths `Config::verify_email_link` and `password_reset_link` build by default.
pub const VERIFY_EMAIL: &str = "/verify-email/";
pub const PASSWORD_RESET: &str = "/password-reset/confirm/";

/// Whether `path` (as requested, before normalisation) is one of the pages'. The edge asks,
/// whether or not they are served: such a path carries a secret either way.
pub fn is_page_path(path: &str) -> bool {
    path.starts_with(VERIFY_EMAIL) || path.starts_with(PASSWORD_RESET)
}

/// `path` with a page's key or token cut out, for the logs.
pub fn redacted(path: &str) -> Cow<'_, str> {
    if let Some(rest) = path.strip_prefix(VERIFY_EMAIL)
        && !rest.is_empty()
    {
        return format!("{VERIFY_EMAIL}[redacted]").into();
    }
    if let Some(rest) = path.strip_prefix(PASSWORD_RESET)
        && !rest.is_empty()
    {
        // The uid is the account's id, no secret; the token is.
        let uid = rest.split('/').next().unwrap_or_default();
        return format!("{PASSWORD_RESET}{uid}/[redacted]").into();
    }
    Cow::Borrowed(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tokens_are_cut_from_logged_paths() {
        assert_eq!(
            redacted("/verify-email/abc123/"),
            "/verify-email/[redacted]"
        );
        assert_eq!(
            redacted("/password-reset/confirm/1z/secret/"),
            "/password-reset/confirm/1z/[redacted]"
        );
        assert_eq!(redacted("/auth/login/"), "/auth/login/");
        assert_eq!(redacted("/verify-email/"), "/verify-email/");
    }
}
