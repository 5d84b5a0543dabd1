//! Every English message a client can see, defined once.
//!
//! These are dj-rest-auth's, Django REST framework's, SimpleJWT's and Django's own strings,
//! byte for byte: frontends written for dj-rest-auth match on them. Messages built from a value
//! (a wait time, a media type, a length) are functions here too, so their wording lives here
//! as well. Password validators keep their messages beside their rules
//! (`service::password_validation`), where each is used once.

// ----- success bodies --------------------------------------------------------------------
pub const LOGGED_OUT: &str = "Successfully logged out.";
pub const PASSWORD_SAVED: &str = "New password has been saved.";
pub const VERIFICATION_SENT: &str = "Verification e-mail sent.";
pub const OK: &str = "ok";
pub const RESET_SENT: &str = "Password reset e-mail has been sent.";
pub const RESET_DONE: &str = "Password has been reset with the new password.";
pub const CSRF_SET: &str = "CSRF cookie set.";

// ----- field errors (DRF serializers) ----------------------------------------------------
pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";
pub const NULL: &str = "This field may not be null.";
pub const NOT_A_STRING: &str = "Not a valid string.";
pub const NUL_CHARACTER: &str = "Null characters are not allowed.";
pub const INVALID_EMAIL: &str = "Enter a valid email address.";
pub const INVALID_VALUE: &str = "Invalid value";

/// DRF's `max_length` message.
pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

/// DRF's answer to a body that is JSON but not an object (`type_name` is Python's).
pub fn not_a_dictionary(type_name: &str) -> String {
    format!("Invalid data. Expected a dictionary, but got {type_name}.")
}

// ----- accounts (dj-rest-auth, allauth, Django) ------------------------------------------
pub const BAD_CREDENTIALS: &str = "Unable to log in with provided credentials.";
pub const EMAIL_NOT_VERIFIED: &str = "E-mail is not verified.";
pub const EMAIL_TAKEN: &str = "User is already registered with this e-mail address.";
/// Registration's mismatch (dj-rest-auth's serializer: an ASCII apostrophe).
pub const REGISTRATION_MISMATCH: &str = "The two password fields didn't match.";
/// Reset and change's mismatch (Django's `SetPasswordForm`: U+2019).
pub const NEW_PASSWORD_MISMATCH: &str = "The two password fields didn\u{2019}t match.";
pub const WRONG_OLD_PASSWORD: &str =
    "Your old password was entered incorrectly. Please enter it again.";
pub const USERNAME_INVALID: &str = "Enter a valid username. This value may contain only \
    letters, numbers, and @/./+/-/_ characters.";
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const NOT_LOGGED_IN: &str =
    "You should be logged in to logout. Check whether the token is passed.";

// ----- social login (dj-rest-auth's social views, allauth) ------------------------------
pub const SOCIAL_INPUT_MISSING: &str = "Incorrect input. access_token or code is required.";
pub const SOCIAL_EXCHANGE_FAILED: &str = "Failed to exchange code for access token";
pub const SOCIAL_INCORRECT_VALUE: &str = "Incorrect value";
pub const SOCIAL_CONNECTED: &str = "Connected.";
pub const SOCIAL_DISCONNECTED: &str = "Disconnected.";
/// allauth's refusal to disconnect the last way to log in.
pub const SOCIAL_NO_PASSWORD: &str = "Your account has no password set up.";
/// allauth's `account_taken` on connecting a provider account linked to someone else.
pub const SOCIAL_ACCOUNT_TAKEN: &str =
    "The third-party account is already connected to a different account.";
/// A sign-up through a provider that shared no address (GitHub with every address private
/// and no `user:email` scope, say): Tessera's accounts need one.
pub const SOCIAL_NO_EMAIL: &str = "The provider did not share an email address.";
/// A redirect flow's `next` outside `social.allowed_redirect_origins`.
pub const SOCIAL_NEXT_NOT_ALLOWED: &str = "This redirect URL is not allowed.";

// ----- authentication (DRF) --------------------------------------------------------------
pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const INVALID_TOKEN: &str = "Invalid token.";
pub const USER_INACTIVE: &str = "User inactive or deleted.";
pub const TOKEN_HEADER_EMPTY: &str = "Invalid token header. No credentials provided.";
pub const TOKEN_HEADER_SPACES: &str =
    "Invalid token header. Token string should not contain spaces.";
pub const TOKEN_HEADER_CHARACTERS: &str =
    "Invalid token header. Token string should not contain invalid characters.";

// ----- JWT (SimpleJWT, dj-rest-auth) -----------------------------------------------------
pub const TOKEN_INVALID: &str = "Token is invalid";
pub const TOKEN_EXPIRED: &str = "Token is expired";
pub const TOKEN_WRONG_TYPE: &str = "Token has wrong type";
pub const TOKEN_BLACKLISTED: &str = "Token is blacklisted";
pub const NO_VALID_REFRESH: &str = "No valid refresh token found.";
pub const ACCESS_TOKEN_NOT_VALID: &str = "Given token not valid for any token type";
pub const BEARER_HEADER_PARTS: &str =
    "Authorization header must contain two space-delimited values";
pub const NO_REFRESH_IN_DATA: &str = "Refresh token was not included in request data.";
pub const NO_REFRESH_IN_COOKIE: &str = "Refresh token was not included in cookie data.";

// ----- CSRF (Django) ---------------------------------------------------------------------
pub const CSRF_COOKIE_NOT_SET: &str = "CSRF Failed: CSRF cookie not set.";
pub const CSRF_TOKEN_MISSING: &str = "CSRF Failed: CSRF token missing.";
pub const CSRF_TOKEN_INCORRECT: &str =
    "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.";
/// The same, for a form's `csrfmiddlewaretoken` field (the email-link pages).
pub const CSRF_FORM_TOKEN_INCORRECT: &str = "CSRF Failed: CSRF token from POST incorrect.";

pub fn csrf_bad_origin(origin: &str) -> String {
    format!("CSRF Failed: Origin checking failed - {origin} does not match any trusted origins.")
}

// ----- the HTTP edge ---------------------------------------------------------------------
pub const NOT_FOUND: &str = "Not found.";
/// `DELETE user/` by the only active superuser: the instance would have no administrator.
pub const LAST_SUPERUSER: &str = "The last administrator cannot delete their own account; make another account an administrator first.";
pub const SERVER_ERROR: &str = "A server error occurred.";
/// DRF's `ServiceUnavailable`: the database cannot be reached or takes no writes.
pub const SERVICE_UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";
pub const REQUEST_TIMED_OUT: &str = "Request timed out.";
pub const UNREADABLE_BODY: &str = "Could not read the request body.";

pub fn method_not_allowed(method: &str) -> String {
    format!("Method \"{method}\" not allowed.")
}

pub fn unsupported_media_type(content_type: &str) -> String {
    format!("Unsupported media type \"{content_type}\" in request.")
}

pub fn body_too_large(limit: usize) -> String {
    format!("Request body is larger than the limit of {limit} bytes.")
}

pub fn json_parse_error(reason: impl std::fmt::Display) -> String {
    format!("JSON parse error - {reason}")
}

pub fn form_parse_error(reason: impl std::fmt::Display) -> String {
    format!("Form parse error - {reason}")
}

pub fn throttled(wait_seconds: u64) -> String {
    format!("Request was throttled. Expected available in {wait_seconds} seconds.")
}

// ----- login: which identifier is missing, per `account.login_methods` -------------------
pub const MUST_INCLUDE_EMAIL: &str = r#"Must include "email" and "password"."#;
pub const MUST_INCLUDE_USERNAME: &str = r#"Must include "username" and "password"."#;
pub const MUST_INCLUDE_EITHER: &str =
    r#"Must include either "username" or "email" and "password"."#;

// Two-factor authentication (dj-rest-auth 7.2's MFA package), and reauthentication.
pub const EPHEMERAL_TOKEN_INVALID: &str = "Invalid or expired token.";
pub const CODE_INVALID: &str = "Invalid code.";
pub const ACTIVATION_CODE_INVALID: &str =
    "Invalid code. Please check your authenticator app and try again.";
pub const ACTIVATION_TOKEN_INVALID: &str = "Invalid or expired activation token.";
pub const ACTIVATION_TOKEN_OTHER_USER: &str = "Invalid activation token for this user.";
pub const MFA_ALREADY_ENABLED: &str =
    "MFA is already enabled. Deactivate it before activating again.";
pub const MFA_NOT_ENABLED: &str = "MFA is not enabled.";
pub const USER_ACCOUNT_DISABLED: &str = "User account is disabled.";
pub const TOTP_DEACTIVATED: &str = "TOTP has been deactivated.";
pub const REAUTHENTICATION_REQUIRED: &str = "Please confirm your password to continue.";
pub const INCORRECT_PASSWORD: &str = "Incorrect password.";

// Email addresses (`emails/`): allauth's messages (its account forms' "e-mail" wording, as
// dj-rest-auth's era has them; headless's for an address that is not the user's).
pub const EMAIL_ALREADY_YOURS: &str =
    "This e-mail address is already associated with this account.";
/// Adding an address another account holds, when `account.prevent_enumeration` is off
/// (allauth's `email_taken`; registration keeps its own words, `EMAIL_TAKEN`).
pub const EMAIL_ADDRESS_TAKEN: &str = "A user is already registered with this e-mail address.";
pub const CANNOT_REMOVE_PRIMARY_EMAIL: &str = "You cannot remove your primary e-mail address.";
pub const PRIMARY_EMAIL_UNVERIFIED: &str = "Your primary e-mail address must be verified.";
pub const UNKNOWN_EMAIL: &str = "Unknown email address.";

/// allauth's `max_email_addresses`.
pub fn too_many_email_addresses(max: u32) -> String {
    format!("You cannot add more than {max} e-mail addresses.")
}
