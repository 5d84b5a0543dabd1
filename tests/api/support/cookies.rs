//! Cookies as a browser handles them: `Set-Cookie` read with the `cookie` crate, a jar that
//! applies what responses set, and a browser that presents the jar and echoes the CSRF cookie.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::{PASSWORD, Reply, TestApp, credentials};

/// Django's session cookie (`SESSION_COOKIE_NAME`).
pub const SESSION_COOKIE: &str = "sessionid";
/// Django's CSRF cookie (`CSRF_COOKIE_NAME`), which the page copies into [`CSRF_HEADER`].
pub const CSRF_COOKIE: &str = "csrftoken";
pub const CSRF_HEADER: &str = "X-CSRFToken";

/// One `Set-Cookie` header.
#[derive(Debug, Clone)]
pub struct SetCookie {
    /// The header as sent.
    pub raw: String,
    pub name: String,
    /// The value, without surrounding double quotes.
    pub value: String,
    parsed: cookie::Cookie<'static>,
}

impl SetCookie {
    /// Parses a header; an attribute the `cookie` crate would pass over (an Expires that is no
    /// date, say) fails the test instead.
    pub fn parse(raw: &str) -> Self {
        let parsed = cookie::Cookie::parse(raw.to_owned())
            .unwrap_or_else(|err| panic!("a Set-Cookie header: {raw:?}: {err}"));
        let set = Self {
            raw: raw.to_owned(),
            name: parsed.name().to_owned(),
            value: parsed.value_trimmed().to_owned(),
            parsed,
        };
        for name in set.attribute_names() {
            let understood = match name.as_str() {
                "expires" => set.parsed.expires_datetime().is_some(),
                "max-age" => set.parsed.max_age().is_some(),
                "samesite" => set.parsed.same_site().is_some(),
                _ => true,
            };
            assert!(understood, "an invalid {name} in {raw:?}");
        }
        set
    }

    /// The names of the attributes sent, lowercased (the `cookie` crate keeps only those it
    /// knows, and a test must see any other).
    pub fn attribute_names(&self) -> Vec<String> {
        self.raw
            .split(';')
            .skip(1)
            .filter_map(|attribute| attribute.split('=').next())
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect()
    }

    pub fn http_only(&self) -> bool {
        self.parsed.http_only() == Some(true)
    }

    pub fn secure(&self) -> bool {
        self.parsed.secure() == Some(true)
    }

    /// `Strict`, `Lax` or `None`.
    pub fn same_site(&self) -> Option<String> {
        self.parsed
            .same_site()
            .map(|same_site| same_site.to_string())
    }

    pub fn path(&self) -> Option<&str> {
        self.parsed.path()
    }

    /// The domain, without a leading dot (browsers ignore it).
    pub fn domain(&self) -> Option<&str> {
        self.parsed.domain()
    }

    /// `Max-Age` in seconds.
    pub fn max_age(&self) -> Option<i64> {
        self.parsed.max_age().map(|age| age.whole_seconds())
    }

    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.parsed.expires_datetime().map(|at| {
            DateTime::from_timestamp(at.unix_timestamp(), 0).expect("a representable date")
        })
    }

    /// Dead on arrival (`Max-Age=0` or an `Expires` in the past): a browser deletes it.
    pub fn is_expired(&self) -> bool {
        self.max_age().is_some_and(|age| age <= 0)
            || self.expires().is_some_and(|at| at < Utc::now())
    }

    /// A cookie told to go away: emptied, and dead already.
    pub fn is_removal(&self) -> bool {
        self.value.is_empty() && self.is_expired()
    }
}

/// Every `Set-Cookie` of a reply, in order.
pub fn set_cookies(reply: &Reply) -> Vec<SetCookie> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| SetCookie::parse(value.to_str().expect("an ASCII Set-Cookie")))
        .collect()
}

/// The one `Set-Cookie` for `name`, if any.
pub fn set_cookie(reply: &Reply, name: &str) -> Option<SetCookie> {
    let mut found: Vec<SetCookie> = set_cookies(reply)
        .into_iter()
        .filter(|cookie| cookie.name == name)
        .collect();
    assert!(found.len() <= 1, "one Set-Cookie for {name}: {found:?}");
    found.pop()
}

/// The one `Set-Cookie` for `name`, which the reply must have.
pub fn issued(reply: &Reply, name: &str) -> SetCookie {
    set_cookie(reply, name).unwrap_or_else(|| {
        panic!(
            "the answer ({}) sets {name}; Set-Cookie: {:?}",
            reply.status,
            set_cookies(reply)
        )
    })
}

/// `request` with exactly these cookies in its `Cookie` header.
pub fn with_cookies(request: RequestBuilder, cookies: &[(&str, &str)]) -> RequestBuilder {
    let header = cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    request.header("Cookie", header)
}

/// The cookies a browser holds, by name.
#[derive(Debug, Clone, Default)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Applies a reply's `Set-Cookie` headers as a browser does: a cookie is stored, or deleted
    /// when it arrives emptied or already expired.
    pub fn apply(&mut self, reply: &Reply) {
        for cookie in set_cookies(reply) {
            if cookie.value.is_empty() || cookie.is_expired() {
                self.0.remove(&cookie.name);
            } else {
                self.0.insert(cookie.name, cookie.value);
            }
        }
    }

    /// `request` carrying the jar's cookies (no `Cookie` header when it is empty).
    pub fn attach(&self, request: RequestBuilder) -> RequestBuilder {
        if self.0.is_empty() {
            return request;
        }
        let cookies: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        with_cookies(request, &cookies)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
}

/// What the page does about `X-CSRFToken` on a request.
#[derive(Debug, Clone, Copy)]
pub enum Csrf<'a> {
    /// The page copies the `csrftoken` cookie into `X-CSRFToken` (when it has one).
    FromCookie,
    /// No header (a cross-site form post, a careless client).
    Omit,
    /// This header value.
    Header(&'a str),
}

/// A browser running a single-page app on the API: cookies in, `Set-Cookie` out, the CSRF
/// cookie echoed by the page's script.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub jar: Jar,
    /// The `Origin` header the browser sends (the page it runs on), if any.
    pub origin: Option<String>,
    /// The `User-Agent` it sends, if not reqwest's default (none).
    pub user_agent: Option<&'static str>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            jar: Jar::default(),
            origin: None,
            user_agent: None,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.get(name).map(str::to_owned)
    }

    pub fn session(&self) -> String {
        self.cookie(SESSION_COOKIE)
            .expect("the browser holds a session cookie")
    }

    pub fn has_session(&self) -> bool {
        self.jar.contains(SESSION_COOKIE)
    }

    pub fn csrf(&self) -> String {
        self.cookie(CSRF_COOKIE)
            .expect("the browser holds a CSRF cookie")
    }

    /// Puts a cookie in the jar, as a script or another site could.
    pub fn plant(&mut self, name: &str, value: &str) {
        self.jar.insert(name, value);
    }

    /// Sends `request` as this browser: its cookies, the CSRF header as `csrf` says, its
    /// `Origin` and `User-Agent`; keeps what the reply sets.
    pub async fn send_request(&mut self, request: RequestBuilder, csrf: Csrf<'_>) -> Reply {
        let mut request = self.jar.attach(request);
        match csrf {
            Csrf::FromCookie => {
                if let Some(token) = self.jar.get(CSRF_COOKIE) {
                    request = request.header(CSRF_HEADER, token);
                }
            }
            Csrf::Omit => {}
            Csrf::Header(value) => request = request.header(CSRF_HEADER, value),
        }
        if let Some(origin) = &self.origin {
            request = request.header("Origin", origin.as_str());
        }
        if let Some(user_agent) = self.user_agent {
            request = request.header("User-Agent", user_agent);
        }
        let reply = self.app.send(request).await;
        self.jar.apply(&reply);
        reply
    }

    /// `method path` under the API prefix, with `body` as JSON.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: Csrf<'_>,
    ) -> Reply {
        let mut request = self.app.client.request(method, self.app.api(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send_request(request, csrf).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None, Csrf::Omit).await
    }

    /// `GET csrf/`, as a single-page app does before its first unsafe request.
    pub async fn fetch_csrf(&mut self) -> Reply {
        let reply = self.get("csrf/").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(self.jar.contains(CSRF_COOKIE), "{reply:?}");
        reply
    }

    /// An unsafe request made properly: the CSRF cookie (fetched first if missing) echoed.
    pub async fn unsafe_request(&mut self, method: Method, path: &str, body: Value) -> Reply {
        if !self.jar.contains(CSRF_COOKIE) {
            self.fetch_csrf().await;
        }
        self.send(method, path, Some(body), Csrf::FromCookie).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.unsafe_request(Method::POST, path, body).await
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Reply {
        self.post("login/", credentials(email, password)).await
    }

    /// Logs in with the standard test password, which must work (session mode: 204).
    pub async fn login_ok(&mut self, email: &str) -> Reply {
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(reply.status, 204, "login failed: {}", reply.text);
        assert!(self.jar.contains(SESSION_COOKIE), "{reply:?}");
        reply
    }

    pub async fn me(&mut self) -> Reply {
        self.get("user/").await
    }
}
