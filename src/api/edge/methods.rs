//! Methods per path, from the OpenAPI document: the `Allow` header of 405 answers, and a 405
//! for an unsafe method no operation accepts before CSRF is looked at (a `QUERY` on `csrf/`
//! is a wrong method, not a forgery).

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::Value;

use crate::api::edge::csrf::is_safe;
use crate::api::error::ApiError;

/// For each path template of the document (without its trailing `/`), the methods it takes,
/// and the `operationId` of each (the `operation` label of the HTTP metrics).
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods(
    Arc<BTreeMap<String, Vec<String>>>,
    Arc<BTreeMap<String, Vec<(String, String)>>>,
);

impl AllowedMethods {
    pub fn from_document(spec: &Value) -> Self {
        let mut map = BTreeMap::new();
        let mut operations = BTreeMap::new();
        if let Some(Value::Object(paths)) = spec.get("paths") {
            for (path, item) in paths {
                for (method, operation) in item.as_object().into_iter().flatten() {
                    if let Some(id) = operation["operationId"].as_str() {
                        operations
                            .entry(path.trim_end_matches('/').to_owned())
                            .or_insert_with(Vec::new)
                            .push((method.to_ascii_uppercase(), id.to_owned()));
                    }
                }
                let mut methods = item
                    .as_object()
                    .map(|ops| {
                        ops.keys()
                            .map(|m| m.to_ascii_uppercase())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                // poem answers HEAD wherever it answers GET (without the body).
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    let get = methods.iter().position(|m| m == "GET").unwrap_or(0);
                    methods.insert(get + 1, "HEAD".to_owned());
                }
                map.insert(path.trim_end_matches('/').to_owned(), methods);
            }
        }
        Self(Arc::new(map), Arc::new(operations))
    }

    /// The same, but `path` (a document path without its trailing `/`) no longer takes
    /// `method`: for an operation the document describes that this configuration switches
    /// off, so that no `Allow` header offers it.
    pub fn without(self, path: &str, method: &str) -> Self {
        let mut methods = (*self.0).clone();
        if let Some(list) = methods.get_mut(path) {
            list.retain(|m| m != method);
        }
        Self(Arc::new(methods), self.1)
    }

    /// The `operationId` answering `method` on `path`, if any (HEAD answers as GET).
    pub fn operation_id(&self, method: &str, path: &str) -> Option<&str> {
        let path = path.trim_end_matches('/');
        let method = if method == "HEAD" { "GET" } else { method };
        let operations = match self.1.get(path) {
            Some(operations) => operations,
            None => {
                self.1
                    .iter()
                    .find(|(template, _)| matches_template(template, path))?
                    .1
            }
        };
        operations
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, id)| id.as_str())
    }

    /// The methods `path` takes; empty for a path the document does not have.
    pub fn for_path(&self, path: &str) -> Vec<String> {
        let path = path.trim_end_matches('/');
        if let Some(methods) = self.0.get(path) {
            return methods.clone();
        }
        // Only a path with a parameter (`{id}`) needs the segment-by-segment match.
        self.0
            .iter()
            .find(|(template, _)| matches_template(template, path))
            .map(|(_, methods)| methods.clone())
            .unwrap_or_default()
    }
}

/// `/auth/sessions/{id}` matches `/auth/sessions/42`: a `{...}` segment matches any one.
fn matches_template(template: &str, path: &str) -> bool {
    let mut template = template.split('/');
    let mut path = path.split('/');
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t == p || (t.starts_with('{') && t.ends_with('}')) => {}
            _ => return false,
        }
    }
}

/// Answers 405 at once for an unsafe method a known path does not take.
pub async fn refuse_unknown_methods<E: Endpoint>(
    next: Arc<E>,
    request: Request,
    allowed: AllowedMethods,
) -> poem::Result<Response> {
    if !is_safe(request.method()) {
        let methods = allowed.for_path(request.uri().path());
        let method = request.method().as_str();
        if !methods.is_empty() && !methods.iter().any(|m| m == method) {
            return Ok(ApiError::method_not_allowed(method, &methods).into_response());
        }
    }
    Ok(next.call(request).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        assert!(matches_template("/auth/login", "/auth/login"));
        assert!(matches_template("/auth/sessions/{id}", "/auth/sessions/7"));
        assert!(!matches_template("/auth/sessions/{id}", "/auth/sessions"));
        assert!(!matches_template("/auth/login", "/auth/login/extra"));
        assert!(!matches_template("/auth/login", "/auth/logout"));
    }
}
