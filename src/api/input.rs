//! Request bodies, parsed the way DRF's serializers do.
//!
//! poem-openapi's own `Json<T>` stops at the first problem and answers in plain text. DRF
//! reports every field at once with fixed English messages, and accepts form-encoded bodies
//! too; frontends depend on both. So `Input<T>` reads the body itself (JSON or
//! `application/x-www-form-urlencoded`, within the size limit) and lets `T` pull its fields out
//! of a `Fields` collector that records DRF's messages. The OpenAPI document still shows `T`'s
//! schema, as JSON only: documenting form bodies too breaks client generators.

use std::marker::PhantomData;

use poem::http::header;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::api::edge::body_limit::BodyLimit;
use crate::api::error::ApiError;
use crate::messages::{self, BLANK, INVALID_EMAIL, NOT_A_STRING, NUL_CHARACTER, NULL, REQUIRED};
use crate::service::email_address::{is_valid_email, normalize_email};
use crate::service::error::FieldErrors;

/// Passwords longer than this are refused, never truncated: argon2 would happily hash
/// megabytes, which is a cheap way to burn a server's CPU.
pub const MAX_PASSWORD_BYTES: usize = 4096;
/// Django's `EmailField` limit.
pub const MAX_EMAIL_LENGTH: usize = 254;

/// A request body type: pulls its fields out of `Fields`, which records any errors.
pub trait FromFields: Sized {
    fn from_fields(fields: &mut Fields) -> Self;
}

/// A field-validated request body: parsed into `Parsed`, documented as `Schema`.
pub struct Input<Schema, Parsed>(pub Parsed, PhantomData<Schema>);

impl<'a, Schema: Type, Parsed: FromFields> ApiExtractor<'a> for Input<Schema, Parsed> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        Schema::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: Schema::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let limit = request.data::<BodyLimit>().unwrap_or(&BodyLimit::DEFAULT).0;
        let object = read_object(request, body, limit).await?;
        let mut fields = Fields::new(object);
        let value = Parsed::from_fields(&mut fields);
        match fields.errors.is_empty() {
            true => Ok(Input(value, PhantomData)),
            false => Err(ApiError::validation(&fields.errors).into()),
        }
    }
}

/// Reads the body as a JSON object or a form; anything else is DRF's 400 or 415.
async fn read_object(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = body
        .take()
        .map_err(|_| ApiError::internal())?
        .into_bytes_limit(limit)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::payload_too_large(limit),
            _ => ApiError::unreadable_body(),
        })?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let media_type = content_type.as_deref().map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match media_type.as_deref() {
        // No body at all, as some clients send for "no fields": every field is missing.
        None if bytes.is_empty() => Ok(Map::new()),
        Some("application/json") => parse_json(&bytes),
        Some(other) if other.starts_with("application/") && other.ends_with("+json") => {
            parse_json(&bytes)
        }
        Some("application/x-www-form-urlencoded") => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(ApiError::form_parse_error)?;
            // A repeated key keeps its last value, as Django's QueryDict does.
            Ok(pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect())
        }
        _ => Err(ApiError::unsupported_media_type(
            content_type.as_deref().unwrap_or_default(),
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(ApiError::json_parse_error)?;
    match value {
        Value::Object(map) => Ok(map),
        other => {
            let mut errors = FieldErrors::new();
            errors.add(
                crate::service::error::NON_FIELD_ERRORS,
                messages::not_a_dictionary(python_type_name(&other)),
            );
            Err(ApiError::validation(&errors))
        }
    }
}

/// The name DRF prints for a non-object body (it reports Python's type names).
fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Bool(_) => "bool",
        Value::Null => "NoneType",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Object(_) => "dict",
    }
}

/// Whether a field may be absent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

/// The fields of one request body and the errors found while reading them.
pub struct Fields {
    values: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    pub fn new(values: Map<String, Value>) -> Self {
        Self {
            values,
            errors: FieldErrors::new(),
        }
    }

    /// A text field as DRF's `CharField`: surrounding whitespace trimmed, blank refused.
    /// `None` when absent (and optional) or invalid (the error is recorded).
    pub fn text(&mut self, name: &str, presence: Presence, max_length: usize) -> Option<String> {
        let raw = self.raw_text(name, presence, NOT_A_STRING)?;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            self.errors.add(name, BLANK);
            return None;
        }
        if trimmed.chars().count() > max_length {
            self.errors.add(name, messages::too_long(max_length));
            return None;
        }
        Some(trimmed.to_owned())
    }

    /// Like `text`, but a blank value is accepted as `""` (DRF's `allow_blank=True`).
    pub fn text_allow_blank(
        &mut self,
        name: &str,
        presence: Presence,
        max_length: usize,
    ) -> Option<String> {
        let raw = self.raw_text(name, presence, NOT_A_STRING)?;
        let trimmed = raw.trim();
        if trimmed.chars().count() > max_length {
            self.errors.add(name, messages::too_long(max_length));
            return None;
        }
        Some(trimmed.to_owned())
    }

    /// An email address: trimmed, well formed, at most 254 characters.
    pub fn email(&mut self, name: &str, presence: Presence) -> Option<String> {
        let raw = self.raw_text(name, presence, INVALID_EMAIL)?;
        let value = raw.trim().to_owned();
        if value.is_empty() {
            self.errors.add(name, BLANK);
            return None;
        }
        if longer_than_stored(&value) {
            self.errors.add(name, messages::too_long(MAX_EMAIL_LENGTH));
            return None;
        }
        if !is_valid_email(&value) {
            self.errors.add(name, INVALID_EMAIL);
            return None;
        }
        Some(value)
    }

    /// An email that may also be blank (dj-rest-auth's login `email` field).
    pub fn email_allow_blank(&mut self, name: &str) -> Option<String> {
        let raw = self.raw_text(name, Presence::Optional, INVALID_EMAIL)?;
        let value = raw.trim().to_owned();
        if !value.is_empty() && (longer_than_stored(&value) || !is_valid_email(&value)) {
            self.errors.add(name, INVALID_EMAIL);
            return None;
        }
        Some(value)
    }

    /// A password: taken exactly as sent (never trimmed), at most 4096 bytes.
    pub fn password(&mut self, name: &str, presence: Presence) -> Option<SecretString> {
        let raw = self.raw_text(name, presence, NOT_A_STRING)?;
        if raw.is_empty() {
            self.errors.add(name, BLANK);
            return None;
        }
        self.within_secret_limit(name, raw)
    }

    /// A code or token a client hands over (social login): taken as sent, at most 4096
    /// bytes; blank counts as absent (dj-rest-auth's `allow_blank`).
    pub fn secret_allow_blank(&mut self, name: &str) -> Option<SecretString> {
        let raw = self.raw_text(name, Presence::Optional, NOT_A_STRING)?;
        if raw.is_empty() {
            return None;
        }
        self.within_secret_limit(name, raw)
    }

    fn within_secret_limit(&mut self, name: &str, raw: String) -> Option<SecretString> {
        if raw.len() > MAX_PASSWORD_BYTES {
            self.errors.add(
                name,
                format!("Ensure this field has no more than {MAX_PASSWORD_BYTES} bytes."),
            );
            return None;
        }
        Some(SecretString::from(raw))
    }

    /// Hands the errors found so far to the caller, for a use case that reports them together
    /// with its own field checks (as a DRF serializer does).
    pub fn take_errors(&mut self) -> FieldErrors {
        std::mem::take(&mut self.errors)
    }

    /// A required field's value, or an empty placeholder when it failed (the error is
    /// recorded, so the placeholder is never used).
    pub fn required<T: Default>(value: Option<T>) -> T {
        value.unwrap_or_default()
    }

    /// The field's text before trimming; `wrong_type` is the message for a non-string value
    /// (DRF's `EmailField` says "Enter a valid email address." where `CharField` says
    /// "Not a valid string.").
    fn raw_text(&mut self, name: &str, presence: Presence, wrong_type: &str) -> Option<String> {
        let text = match self.values.get(name) {
            None => {
                if presence == Presence::Required {
                    self.errors.add(name, REQUIRED);
                }
                return None;
            }
            Some(Value::Null) => {
                self.errors.add(name, NULL);
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.errors.add(name, wrong_type);
                return None;
            }
        };
        if text.contains('\0') {
            self.errors.add(name, NUL_CHARACTER);
            return None;
        }
        Some(text)
    }
}

/// Over the stored length as typed, or once its domain is spelled in A-labels (which can be
/// longer).
fn longer_than_stored(email: &str) -> bool {
    email.chars().count() > MAX_EMAIL_LENGTH
        || normalize_email(email).chars().count() > MAX_EMAIL_LENGTH
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => Fields::new(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn drf_messages_for_missing_blank_null_and_wrong_type() {
        let mut f = fields(json!({"b": "  ", "n": null, "l": [1], "num": 42}));
        assert_eq!(f.text("missing", Presence::Required, 10), None);
        assert_eq!(f.text("b", Presence::Required, 10), None);
        assert_eq!(f.text("n", Presence::Optional, 10), None);
        assert_eq!(f.text("l", Presence::Optional, 10), None);
        // Unlike DRF's CharField, a number is not text: the documented type is string.
        assert_eq!(f.text("num", Presence::Optional, 10), None);
        assert_eq!(f.text("absent", Presence::Optional, 10), None);
        let errors: Vec<(String, Vec<String>)> = f
            .errors
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            errors,
            vec![
                ("b".into(), vec![BLANK.into()]),
                ("l".into(), vec![NOT_A_STRING.into()]),
                ("missing".into(), vec![REQUIRED.into()]),
                ("n".into(), vec![NULL.into()]),
                ("num".into(), vec![NOT_A_STRING.into()]),
            ]
        );
    }

    #[test]
    fn passwords_are_not_trimmed_and_are_capped() {
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let mut f = fields(json!({"p": " spaced ", "long": long, "nul": "a\u{0}b"}));
        use secrecy::ExposeSecret;
        assert_eq!(
            f.password("p", Presence::Required).unwrap().expose_secret(),
            " spaced "
        );
        assert!(f.password("long", Presence::Required).is_none());
        assert!(f.password("nul", Presence::Required).is_none());
        assert!(f.errors.has("long") && f.errors.has("nul"));
    }

    #[test]
    fn non_object_bodies_name_the_python_type() {
        for (body, name) in [
            ("[]", "list"),
            ("\"s\"", "str"),
            ("1", "int"),
            ("1.5", "float"),
            ("true", "bool"),
            ("null", "NoneType"),
        ] {
            let err = parse_json(body.as_bytes()).unwrap_err();
            assert_eq!(
                err.body(),
                &json!({"non_field_errors": [format!("Invalid data. Expected a dictionary, but got {name}.")]})
            );
        }
    }
}
