//! The error answers of each operation, for the OpenAPI document: only the statuses the
//! operation can give under the configuration, each with bodies built by the same
//! `ApiError` constructors the server answers with, and the headers a client acts on.
//!
//! Most of it follows from the operation's shape: a body can be refused (400, 413, 415), a
//! credential can be refused (the mode's 401 with its challenge, or session mode's 403), an
//! unsafe request can fail the CSRF check (403), a limited client gets 429, and anything that
//! needs the database can meet its outage (503). What does not show in the shape (which rate
//! limits apply, a 404, the words of a 400) is in [`specifics`], one entry per operation; an
//! operation without one stops the document from being built, so no operation goes
//! undocumented.

use serde_json::{Map, Value, json};

use crate::api::edge::reshape::Challenge;
use crate::api::error::ApiError;
use crate::config::{Config, Rules};
use crate::messages;
use crate::service::jwt::JwtRejection;

/// The security scheme of session mode's CSRF header (see `document`).
pub const CSRF_SCHEME: &str = "CSRFToken";

/// What an operation can refuse beyond what its shape implies.
struct Specifics<'c> {
    /// Examples of its 400 answers.
    invalid: Vec<(&'static str, ApiError)>,
    /// The rate limits that can refuse it.
    limits: Vec<&'c Rules>,
    /// Examples of 401 answers about a token in the body (JWT `token/*`, `logout/`).
    token_refused: Vec<(&'static str, ApiError)>,
    not_found: bool,
    /// Needs a recent proof of the password (403 `reauthentication_required`).
    reauthentication: bool,
    /// Examples of 403 answers no credential avoids.
    forbidden: Vec<(&'static str, ApiError)>,
    /// Switched off by configuration: answers 405 (with the path's other methods).
    switched_off: bool,
    /// Answers without touching the database (no 503).
    no_database: bool,
}

impl Specifics<'_> {
    fn new(invalid: Vec<(&'static str, ApiError)>) -> Self {
        Self {
            invalid,
            limits: Vec::new(),
            token_refused: Vec::new(),
            not_found: false,
            reauthentication: false,
            forbidden: Vec::new(),
            switched_off: false,
            no_database: false,
        }
    }
}

fn specifics<'c>(operation_id: &str, config: &'c Config) -> Specifics<'c> {
    let limits = &config.rate_limits;
    let field = |name, message: &str| ApiError::field(name, message);
    let required = |name| ApiError::field(name, messages::REQUIRED);
    match operation_id {
        "login" => Specifics {
            limits: vec![&limits.login, &limits.login_failed],
            ..Specifics::new(vec![
                (
                    "wrong credentials",
                    field("non_field_errors", messages::BAD_CREDENTIALS),
                ),
                (
                    "unverified address",
                    field("non_field_errors", messages::EMAIL_NOT_VERIFIED),
                ),
            ])
        },
        "register" => Specifics {
            limits: vec![&limits.signup],
            ..Specifics::new(vec![
                ("address taken", field("email", messages::EMAIL_TAKEN)),
                (
                    "passwords differ",
                    field("non_field_errors", messages::REGISTRATION_MISMATCH),
                ),
            ])
        },
        "verifyEmail" => Specifics {
            not_found: true,
            ..Specifics::new(vec![("no key", required("key"))])
        },
        "resendEmail" => Specifics::new(vec![(
            "bad address",
            field("email", messages::INVALID_EMAIL),
        )]),
        "requestPasswordReset" => Specifics {
            limits: vec![&limits.reset_password],
            ..Specifics::new(vec![(
                "bad address",
                field("email", messages::INVALID_EMAIL),
            )])
        },
        "confirmPasswordReset" => Specifics {
            limits: vec![&limits.reset_password_from_key],
            ..Specifics::new(vec![
                ("bad link", field("token", messages::INVALID_VALUE)),
                (
                    "passwords differ",
                    field("new_password2", messages::NEW_PASSWORD_MISMATCH),
                ),
            ])
        },
        "changePassword" => Specifics {
            limits: vec![&limits.change_password],
            ..Specifics::new(vec![
                (
                    "passwords differ",
                    field("new_password2", messages::NEW_PASSWORD_MISMATCH),
                ),
                (
                    "wrong old password",
                    field("old_password", messages::WRONG_OLD_PASSWORD),
                ),
            ])
        },
        "getUser" | "listSessions" => Specifics::new(Vec::new()),
        "endSession" => Specifics {
            not_found: true,
            ..Specifics::new(Vec::new())
        },
        "exportAccount" => Specifics {
            reauthentication: true,
            ..Specifics::new(Vec::new())
        },
        "deleteAccount" => Specifics {
            reauthentication: true,
            forbidden: vec![(
                "last administrator",
                ApiError::forbidden(messages::LAST_SUPERUSER),
            )],
            switched_off: config.account.deletion == crate::config::AccountDeletion::Disabled,
            ..Specifics::new(Vec::new())
        },
        "endOtherSessions" => Specifics {
            reauthentication: true,
            ..Specifics::new(Vec::new())
        },
        "updateUser" | "partialUpdateUser" => Specifics::new(vec![(
            "username taken",
            field("username", messages::USERNAME_TAKEN),
        )]),
        "logout" => match config.auth.mode {
            crate::config::AuthMode::Token => {
                Specifics::new(vec![("no token", ApiError::not_logged_in())])
            }
            crate::config::AuthMode::Jwt => Specifics {
                token_refused: vec![
                    ("no refresh token", ApiError::refresh_not_included(false)),
                    (
                        "revoked refresh token",
                        ApiError::refresh_refused_at_logout(JwtRejection::Blacklisted),
                    ),
                ],
                ..Specifics::new(vec![(
                    "not a string",
                    field("refresh", messages::NOT_A_STRING),
                )])
            },
            crate::config::AuthMode::Session => Specifics::new(Vec::new()),
        },
        "refreshToken" => Specifics {
            token_refused: vec![
                ("expired", ApiError::token_not_valid(JwtRejection::Expired)),
                (
                    "revoked",
                    ApiError::token_not_valid(JwtRejection::Blacklisted),
                ),
                ("none sent", ApiError::no_valid_refresh()),
            ],
            ..Specifics::new(vec![(
                "not a string",
                field("refresh", messages::NOT_A_STRING),
            )])
        },
        "verifyToken" => Specifics {
            token_refused: vec![
                ("invalid", ApiError::token_not_valid(JwtRejection::Invalid)),
                ("expired", ApiError::token_not_valid(JwtRejection::Expired)),
            ],
            ..Specifics::new(vec![("no token", required("token"))])
        },
        "verifyMfa" => Specifics {
            limits: vec![&limits.login_failed],
            ..Specifics::new(vec![
                (
                    "expired token",
                    field("ephemeral_token", messages::EPHEMERAL_TOKEN_INVALID),
                ),
                ("wrong code", field("code", messages::CODE_INVALID)),
                (
                    "inactive account",
                    field("detail", messages::USER_ACCOUNT_DISABLED),
                ),
            ])
        },
        "startTotpActivation" | "getMfaStatus" => Specifics::new(Vec::new()),
        "activateTotp" => Specifics::new(vec![
            (
                "already on",
                ApiError::bad_request(messages::MFA_ALREADY_ENABLED),
            ),
            (
                "expired activation",
                field("activation_token", messages::ACTIVATION_TOKEN_INVALID),
            ),
            (
                "wrong code",
                field("code", messages::ACTIVATION_CODE_INVALID),
            ),
        ]),
        "deactivateTotp" => Specifics {
            reauthentication: true,
            ..Specifics::new(vec![
                ("not on", ApiError::bad_request(messages::MFA_NOT_ENABLED)),
                ("wrong code", field("code", messages::CODE_INVALID)),
            ])
        },
        "listRecoveryCodes" => Specifics {
            reauthentication: config.mfa.recovery_codes_require_reauthentication,
            ..Specifics::new(Vec::new())
        },
        "regenerateRecoveryCodes" => Specifics {
            reauthentication: config.mfa.recovery_codes_require_reauthentication,
            ..Specifics::new(vec![(
                "not on",
                ApiError::bad_request(messages::MFA_NOT_ENABLED),
            )])
        },
        "reauthenticate" => Specifics {
            limits: vec![&limits.login_failed],
            ..Specifics::new(vec![
                (
                    "wrong password",
                    field("password", messages::INCORRECT_PASSWORD),
                ),
                ("wrong code", field("code", messages::CODE_INVALID)),
            ])
        },
        "listEmailAddresses" => Specifics::new(Vec::new()),
        "addEmailAddress" => {
            let account = &config.account;
            let mut invalid = vec![(
                "already yours",
                field("email", messages::EMAIL_ALREADY_YOURS),
            )];
            if !account.prevent_enumeration {
                invalid.push(("taken", field("email", messages::EMAIL_ADDRESS_TAKEN)));
            }
            if !account.change_email && account.max_email_addresses > 0 {
                let message = messages::too_many_email_addresses(account.max_email_addresses);
                invalid.push(("too many", field("email", &message)));
            }
            Specifics {
                reauthentication: true,
                ..Specifics::new(invalid)
            }
        }
        "removeEmailAddress" => Specifics {
            reauthentication: true,
            ..Specifics::new(vec![
                (
                    "primary address",
                    field("email", messages::CANNOT_REMOVE_PRIMARY_EMAIL),
                ),
                ("not yours", field("email", messages::UNKNOWN_EMAIL)),
            ])
        },
        "makeEmailAddressPrimary" => Specifics::new(vec![
            (
                "unconfirmed address",
                field("email", messages::PRIMARY_EMAIL_UNVERIFIED),
            ),
            ("not yours", field("email", messages::UNKNOWN_EMAIL)),
        ]),
        "resendEmailAddressConfirmation" => {
            Specifics::new(vec![("not yours", field("email", messages::UNKNOWN_EMAIL))])
        }
        "socialLogin" | "socialConnect" => {
            let non_field = |message| field("non_field_errors", message);
            let mut invalid = vec![
                ("no proof", non_field(messages::SOCIAL_INPUT_MISSING)),
                ("code refused", non_field(messages::SOCIAL_EXCHANGE_FAILED)),
                ("token refused", non_field(messages::SOCIAL_INCORRECT_VALUE)),
            ];
            let connect = operation_id == "socialConnect";
            invalid.push(match connect {
                true => (
                    "linked elsewhere",
                    non_field(messages::SOCIAL_ACCOUNT_TAKEN),
                ),
                false => ("address taken", non_field(messages::EMAIL_TAKEN)),
            });
            Specifics {
                limits: match connect {
                    true => vec![&limits.login],
                    false => vec![&limits.login, &limits.signup],
                },
                not_found: true,
                reauthentication: connect,
                ..Specifics::new(invalid)
            }
        }
        "listSocialAccounts" => Specifics::new(Vec::new()),
        "socialDisconnect" => Specifics {
            not_found: true,
            ..Specifics::new(vec![(
                "last way to log in",
                ApiError::bad_request(messages::SOCIAL_NO_PASSWORD),
            )])
        },
        "socialRedirect" => Specifics {
            limits: vec![&limits.login],
            not_found: true,
            ..Specifics::new(vec![(
                "next not allowed",
                field("next", messages::SOCIAL_NEXT_NOT_ALLOWED),
            )])
        },
        "socialCallback" => Specifics {
            not_found: true,
            ..Specifics::new(vec![(
                "bad or used state",
                field("non_field_errors", messages::SOCIAL_INCORRECT_VALUE),
            )])
        },
        "socialExchange" => Specifics {
            limits: vec![&limits.login],
            ..Specifics::new(vec![(
                "bad or used code",
                field("login_code", messages::SOCIAL_INCORRECT_VALUE),
            )])
        },
        "getCsrfToken" => Specifics {
            no_database: true,
            ..Specifics::new(Vec::new())
        },
        other => {
            panic!("the errors of operation {other:?} are not documented (api::documented_errors)")
        }
    }
}

/// Puts each operation's error answers into `spec`.
pub fn document(spec: &mut Value, config: &Config, challenge: Challenge) {
    let (name, schema) = ApiError::schema();
    spec["components"]["schemas"][name] = schema;
    let Some(Value::Object(paths)) = spec.get_mut("paths") else {
        return;
    };
    for (method, operation) in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
    {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let specifics = specifics(&id, config);
        let errors = answers(method, operation, &specifics, config, challenge);
        let responses = operation["responses"]
            .as_object_mut()
            .expect("every operation has responses");
        for (status, response) in errors {
            responses.insert(status.to_string(), response);
        }
    }
}

/// The error answers of one operation, by status.
fn answers(
    method: &str,
    operation: &Value,
    specifics: &Specifics<'_>,
    config: &Config,
    challenge: Challenge,
) -> Vec<(u16, Value)> {
    let has_body = operation.get("requestBody").is_some();
    let requirements = operation["security"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let credential_schemes = |requirement: &Value| {
        requirement
            .as_object()
            .is_some_and(|r| r.keys().any(|scheme| scheme != CSRF_SCHEME))
    };
    let reads_credential = requirements.iter().any(credential_schemes);
    let credential_required = reads_credential
        && requirements
            .iter()
            .all(|r| r.as_object().is_some_and(|r| !r.is_empty()));
    let unsafe_method = !matches!(method, "get" | "head" | "options" | "trace");
    let csrf_checked = unsafe_method
        && (requirements.iter().any(|r| r.get(CSRF_SCHEME).is_some())
            || (config.jwt.auth_cookie.is_some()
                && config.jwt.cookie_use_csrf
                && reads_credential));

    let mut answers = Vec::new();
    let mut invalid = specifics.invalid.clone();
    if has_body {
        invalid.push((
            "malformed JSON",
            ApiError::json_parse_error("expected value at line 1 column 1"),
        ));
    }
    if !invalid.is_empty() {
        answers.push((
            400,
            response(
                "Invalid input: field errors, `non_field_errors` or `detail`.",
                &invalid,
                &[],
            ),
        ));
    }

    let mut refused = specifics.token_refused.clone();
    if reads_credential {
        if credential_required {
            refused.push(("no credential", ApiError::not_authenticated()));
        }
        refused.extend(credential_refusal(challenge).map(|error| ("refused credential", error)));
    }
    let mut forbidden = Vec::new();
    match challenge.header() {
        Some(scheme) if !refused.is_empty() => answers.push((
            401,
            response(
                "The credential is missing or was refused.",
                &refused,
                &[(
                    "WWW-Authenticate",
                    &format!("How to authenticate: `{scheme}`."),
                )],
            ),
        )),
        Some(_) => {}
        // Session mode: DRF answers 403 where other modes answer 401.
        None => forbidden.extend(refused),
    }
    if csrf_checked {
        forbidden.push((
            "CSRF check failed",
            ApiError::csrf_failed(messages::CSRF_TOKEN_MISSING),
        ));
    }
    if specifics.reauthentication {
        forbidden.push((
            "password proved too long ago",
            ApiError::reauthentication_required(),
        ));
    }
    forbidden.extend(specifics.forbidden.iter().cloned());
    if !forbidden.is_empty() {
        answers.push((
            403,
            response(
                "Not allowed: not logged in, the CSRF check failed, the password must be \
                 confirmed again (`reauthenticate/`), or what the example says.",
                &forbidden,
                &[],
            ),
        ));
    }
    if specifics.not_found {
        answers.push((
            404,
            response(
                "Not found: an unknown, used or expired key, or an id that is not the user's.",
                &[("unknown", ApiError::not_found())],
                &[],
            ),
        ));
    }
    if specifics.switched_off {
        answers.push((
            405,
            response(
                "Switched off by the server's configuration.",
                &[("switched off", ApiError::method_not_allowed("DELETE", &[]))],
                &[("Allow", "The methods the path answers.")],
            ),
        ));
    }
    if has_body {
        let limit = config.server.max_body_bytes;
        answers.push((
            413,
            response(
                "The body is too large.",
                &[("too large", ApiError::payload_too_large(limit))],
                &[],
            ),
        ));
        answers.push((
            415,
            response(
                "The body is neither JSON nor form-encoded.",
                &[(
                    "other media type",
                    ApiError::unsupported_media_type("text/plain"),
                )],
                &[],
            ),
        ));
    }
    let rate_limited = config.rate_limits.enabled
        && specifics
            .limits
            .iter()
            .any(|rules| !rules.rules().is_empty());
    let credential_limited =
        reads_credential && config.credential_cache.failed_checks_per_minute > 0;
    if rate_limited || credential_limited {
        answers.push((
            429,
            response(
                "Too many requests from this client (or for this account).",
                &[("throttled", ApiError::throttled(42))],
                &[("Retry-After", "Seconds to wait before trying again.")],
            ),
        ));
    }
    if !specifics.no_database {
        answers.push((
            503,
            response(
                "The database cannot be reached; nothing was changed.",
                &[("database unavailable", ApiError::service_unavailable())],
                &[("Retry-After", "Seconds to wait before trying again.")],
            ),
        ));
    }
    answers
}

/// How the mode refuses a credential it was sent.
fn credential_refusal(challenge: Challenge) -> Option<ApiError> {
    match challenge {
        Challenge::Bearer => Some(ApiError::access_token_not_valid(JwtRejection::Expired)),
        Challenge::Token => Some(ApiError::authentication_failed(messages::INVALID_TOKEN)),
        // A session cookie that names no live session counts as none.
        Challenge::Forbidden => None,
    }
}

/// One documented status: its description, named examples and headers.
fn response(description: &str, examples: &[(&str, ApiError)], headers: &[(&str, &str)]) -> Value {
    let mut named = Map::new();
    for (name, error) in examples {
        named.insert((*name).to_owned(), json!({ "value": error.body() }));
    }
    let mut answer = json!({
        "description": description,
        "content": {
            "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{}", ApiError::schema().0) },
                "examples": named,
            }
        },
    });
    if !headers.is_empty() {
        let headers: Map<String, Value> = headers
            .iter()
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    json!({ "description": description, "schema": { "type": "string" } }),
                )
            })
            .collect();
        answer["headers"] = Value::Object(headers);
    }
    answer
}
