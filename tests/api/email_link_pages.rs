//! The pages behind the links in emails when no frontend takes them (`/verify-email/{key}/`,
//! `/password-reset/confirm/{uid}/{token}/`): opened from the delivered mail in a real browser
//! and used as a person would; a GET changes nothing; their forms pass the CSRF check in every
//! mode; a configured frontend URL turns them off; their headers; overridable templates.

use serde_json::{Value, json};
use tessera::config::{AuthMode, EmailVerification};
use tessera::messages;

use crate::support::browser;
use crate::support::cookies::Browser;
use crate::support::{Backend, PASSWORD, Reply, TestApp, credentials, signup_body};

const EMAIL: &str = "ada@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";
const MODES: [AuthMode; 3] = [AuthMode::Token, AuthMode::Jwt, AuthMode::Session];

async fn spawn(backend: Backend, mode: AuthMode) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.auth.mode = mode;
        config.account.email_verification = EmailVerification::Mandatory;
    })
    .await
}

/// `path` under the API prefix, POSTed as the mode's client does (session mode: with the CSRF
/// cookie echoed in its header).
async fn api_post(app: &TestApp, path: &str, body: Value) -> Reply {
    match app.config.auth.mode {
        AuthMode::Session => Browser::new(app).post(path, body).await,
        _ => app.post(path, body).await,
    }
}

/// Whether `password` logs `EMAIL` in over the API, in the app's mode.
async fn logs_in(app: &TestApp, password: &str) -> bool {
    let reply = api_post(app, "login/", credentials(EMAIL, password)).await;
    match reply.status {
        200 | 204 => true,
        400 => false,
        _ => panic!("login answered {}: {}", reply.status, reply.text),
    }
}

/// Signs `EMAIL` up (under mandatory verification: no credential yet) and returns the
/// confirmation link from the delivered mail, pointed at the app under test.
async fn sign_up(app: &TestApp) -> String {
    let reply = api_post(app, "registration/", signup_body(EMAIL, PASSWORD)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let link = app.newest_link(1, app.config.public_base()).await;
    assert!(link.contains("/verify-email/"), "{link}");
    local(app, &link)
}

/// Asks for a reset link over the API and returns it from the mail (after `mails_before`).
async fn reset_link(app: &TestApp, mails_before: usize) -> String {
    let reply = api_post(app, "password/reset/", json!({"email": EMAIL})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let link = app
        .newest_link(mails_before + 1, app.config.public_base())
        .await;
    assert!(link.contains("/password-reset/confirm/"), "{link}");
    local(app, &link)
}

/// A link built from `public_url` (the default, `http://127.0.0.1:8000`), at the address the
/// test's server really listens on.
fn local(app: &TestApp, link: &str) -> String {
    let path = link
        .strip_prefix(app.config.public_base())
        .unwrap_or_else(|| panic!("{link} starts with public_url"));
    app.url(path)
}

async fn is_verified(app: &TestApp, email: &str) -> bool {
    use entity::email_address;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    email_address::Entity::find()
        .filter(email_address::Column::Email.eq(email))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the address is stored")
        .verified
}

/// The steps `email_link_pages.cjs` printed, by name.
struct Steps(Vec<Value>, String);

impl Steps {
    async fn drive(args: Vec<String>) -> Self {
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            browser::drive("email_link_pages.cjs", &args)
        })
        .await
        .unwrap();
        let steps = output
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per step"))
            .collect();
        Self(steps, output)
    }

    fn get(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name:?} in\n{}", self.1))
    }

    fn text(&self, name: &str) -> &str {
        self.get(name)["text"].as_str().unwrap()
    }

    /// The browser reported no error (a refused inline style, say).
    fn assert_quiet(&self) {
        assert!(
            !self.0.iter().any(|s| s["step"] == "console error"),
            "the browser complained:\n{}",
            self.1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// In a browser
// ---------------------------------------------------------------------------------------------

/// Signup mails a link; the page it opens shows the address and a Confirm button; pressing it
/// confirms, and login (refused until then under mandatory verification) works. In token mode
/// and in session mode, where the API's CSRF check covers every unsafe request too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_confirms_an_address_from_the_mail() {
    for mode in [AuthMode::Token, AuthMode::Session] {
        let app = spawn(Backend::Sqlite, mode).await;
        let link = sign_up(&app).await;
        assert!(
            !logs_in(&app, PASSWORD).await,
            "{mode:?}: login before confirming"
        );

        let steps = Steps::drive(vec!["verify".into(), link]).await;
        let open = steps.get("open");
        assert_eq!(open["status"], 200, "{mode:?}: {open}");
        assert!(steps.text("open").contains(EMAIL), "{mode:?}: {open}");
        assert_eq!(open["forms"], 1, "{mode:?}: {open}");
        let confirm = steps.get("confirm");
        assert_eq!(confirm["status"], 200, "{mode:?}: {confirm}");
        assert!(
            steps
                .text("confirm")
                .contains(&format!("You have confirmed that {EMAIL}")),
            "{mode:?}: {confirm}"
        );
        assert_eq!(confirm["forms"], 0, "{mode:?}: {confirm}");
        steps.assert_quiet();

        assert!(is_verified(&app, EMAIL).await, "{mode:?}");
        assert!(
            logs_in(&app, PASSWORD).await,
            "{mode:?}: login after confirming"
        );
    }
}

/// A reset link from the mail: a weak password gets the validators' messages, exactly the
/// API's, and changes nothing; a good one sets the password (login with it works, with the old
/// one not); the link is then used up. In session mode and in JWT mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sets_a_new_password_from_the_mail() {
    for mode in [AuthMode::Session, AuthMode::Jwt] {
        let app = TestApp::spawn_with(Backend::Sqlite, |config| config.auth.mode = mode).await;
        let reply = api_post(&app, "registration/", signup_body(EMAIL, PASSWORD)).await;
        assert!(reply.status < 300, "{}", reply.text);
        let link = reset_link(&app, app.delivered(1).await.len()).await;
        let (uid, token) = {
            let parts: Vec<&str> = link.trim_end_matches('/').rsplit('/').take(2).collect();
            (parts[1].to_owned(), parts[0].to_owned())
        };
        // What the API says of a weak password (a refusal spends nothing).
        let weak = "abc123";
        let api = api_post(
            &app,
            "password/reset/confirm/",
            json!({"uid": uid, "token": token, "new_password1": weak, "new_password2": weak}),
        )
        .await;
        assert_eq!(api.status, 400, "{}", api.text);
        let expected: Vec<String> = serde_json::from_value(api.body["new_password2"].clone())
            .unwrap_or_else(|_| panic!("the API refuses {weak}: {}", api.text));

        let steps =
            Steps::drive(vec!["reset".into(), link, weak.into(), NEW_PASSWORD.into()]).await;
        assert_eq!(steps.get("open")["status"], 200, "{mode:?}");
        assert_eq!(steps.get("open")["forms"], 1, "{mode:?}");
        let refused = steps.get(&format!("submit {weak}"));
        assert_eq!(refused["status"], 400, "{mode:?}: {refused}");
        assert_eq!(refused["errors"], json!(expected), "{mode:?}: {refused}");
        assert_eq!(refused["forms"], 1, "{mode:?}: the form again");
        let done = steps.get(&format!("submit {NEW_PASSWORD}"));
        assert_eq!(done["status"], 200, "{mode:?}: {done}");
        assert!(
            steps
                .text(&format!("submit {NEW_PASSWORD}"))
                .contains(messages::RESET_DONE),
            "{mode:?}: {done}"
        );
        let again = steps.get("open again");
        assert_eq!(again["status"], 404, "{mode:?}: {again}");
        assert_eq!(again["forms"], 0, "{mode:?}: {again}");
        assert!(
            steps.text("open again").contains("invalid"),
            "{mode:?}: {again}"
        );
        steps.assert_quiet();

        assert!(
            logs_in(&app, NEW_PASSWORD).await,
            "{mode:?}: the new password"
        );
        assert!(!logs_in(&app, PASSWORD).await, "{mode:?}: the old password");
    }
}

// ---------------------------------------------------------------------------------------------
// Over plain HTTP
// ---------------------------------------------------------------------------------------------

/// What a page answered, with the cookies and form token it handed out.
struct Page {
    reply: Reply,
    csrf_cookie: Option<String>,
    form_token: Option<String>,
}

async fn open(app: &TestApp, url: &str) -> Page {
    let reply = app.send(app.client.get(url)).await;
    let csrf_cookie = crate::support::cookies::set_cookie(&reply, "csrftoken").map(|c| c.value);
    let form_token = reply
        .text
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned);
    Page {
        reply,
        csrf_cookie,
        form_token,
    }
}

/// POSTs `fields` to the page at `url` as a form, with the cookie and `Origin` given.
async fn post_form(
    app: &TestApp,
    url: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.post(url).form(fields);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", format!("csrftoken={cookie}"));
    }
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    app.send(request).await
}

/// A forged form post: its CSRF cookie, its `Origin`, its fields, and why it is refused.
type Forgery<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    &'a str,
);

/// What a mail scanner does, opening the link (twice), confirms nothing; the page's form does.
async fn a_get_alone_confirms_nothing(backend: Backend) {
    let app = spawn(backend, AuthMode::Token).await;
    let link = sign_up(&app).await;
    for _ in 0..2 {
        let page = open(&app, &link).await;
        assert_eq!(page.reply.status, 200, "{}", page.reply.text);
        assert!(page.reply.text.contains(EMAIL));
    }
    let head = app.send(app.client.head(&link)).await;
    assert_eq!(head.status, 200);
    assert!(
        !is_verified(&app, EMAIL).await,
        "a GET confirmed the address"
    );
    assert!(!logs_in(&app, PASSWORD).await);
}

/// A form post without the token, with a wrong one, without the cookie, or from another
/// origin is refused (403, Django's words) and changes nothing, in every mode; the right one
/// works. Both pages.
async fn forged_posts_are_refused_in_every_mode(backend: Backend) {
    for mode in MODES {
        let app = spawn(backend.clone(), mode).await;
        let verify = sign_up(&app).await;
        let page = open(&app, &verify).await;
        let cookie = page.csrf_cookie.expect("the page sets the CSRF cookie");
        let token = page.form_token.expect("the form carries the token");
        assert_eq!(cookie, token, "{mode:?}");
        let own = app.base.as_str();
        let wrong = "a".repeat(32);
        let forgeries: [Forgery; 4] = [
            (Some(&cookie), Some(own), &[], messages::CSRF_TOKEN_MISSING),
            (
                Some(&cookie),
                Some(own),
                &[("csrfmiddlewaretoken", wrong.as_str())],
                messages::CSRF_FORM_TOKEN_INCORRECT,
            ),
            (
                None,
                Some(own),
                &[("csrfmiddlewaretoken", token.as_str())],
                messages::CSRF_COOKIE_NOT_SET,
            ),
            (
                Some(&cookie),
                Some("https://evil.example"),
                &[("csrfmiddlewaretoken", token.as_str())],
                "does not match any trusted origins",
            ),
        ];
        for (cookie, origin, fields, why) in forgeries {
            let reply = post_form(&app, &verify, cookie, origin, fields).await;
            assert_eq!(reply.status, 403, "{mode:?} {fields:?}: {}", reply.text);
            assert!(reply.text.contains(why), "{mode:?}: {}", reply.text);
            assert!(
                !is_verified(&app, EMAIL).await,
                "{mode:?}: a forgery confirmed"
            );
        }
        let fields = [("csrfmiddlewaretoken", token.as_str())];
        let reply = post_form(&app, &verify, Some(&cookie), Some(own), &fields).await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert!(is_verified(&app, EMAIL).await, "{mode:?}");

        let reset = reset_link(&app, 1).await;
        let page = open(&app, &reset).await;
        assert_eq!(page.reply.status, 200, "{mode:?}: {}", page.reply.text);
        // A fresh client: a new cookie, and the form carries its token.
        let cookie = page.csrf_cookie.expect("the page sets the CSRF cookie");
        let token = page.form_token.expect("the form carries the token");
        let passwords = [
            ("new_password1", NEW_PASSWORD),
            ("new_password2", NEW_PASSWORD),
        ];
        let forged = [
            passwords[0],
            passwords[1],
            ("csrfmiddlewaretoken", token.as_str()),
        ];
        for (cookie, origin, fields) in [
            (Some(cookie.as_str()), Some(own), &passwords[..]),
            (Some(&cookie), Some("https://evil.example"), &forged[..]),
        ] {
            let reply = post_form(&app, &reset, cookie, origin, fields).await;
            assert_eq!(reply.status, 403, "{mode:?}: {}", reply.text);
            assert!(
                app.password_is(EMAIL, PASSWORD).await,
                "{mode:?}: a forgery reset"
            );
        }
        let reply = post_form(&app, &reset, Some(&cookie), Some(own), &forged).await;
        assert_eq!(reply.status, 200, "{mode:?}: {}", reply.text);
        assert!(app.password_is(EMAIL, NEW_PASSWORD).await, "{mode:?}");
    }
}

/// Unknown keys and links: the message page, no form, 404; the API's 404 is unchanged.
async fn unknown_links_show_a_message_and_no_form(backend: Backend) {
    let app = spawn(backend, AuthMode::Token).await;
    for path in [
        "/verify-email/0123456789abcdef0123456789abcdef/",
        "/password-reset/confirm/1/0123456789abcdef0123456789abcdef/",
        "/password-reset/confirm/not-base36!/x/",
    ] {
        let page = open(&app, &app.url(path)).await;
        assert_eq!(page.reply.status, 404, "{path}: {}", page.reply.text);
        assert!(
            page.reply.text.contains("invalid"),
            "{path}: {}",
            page.reply.text
        );
        assert!(!page.reply.text.contains("<form"), "{path}");
    }
    let api = app
        .post("registration/verify-email/", json!({"key": "nope"}))
        .await;
    crate::support::assert_detail(&api, 404, messages::NOT_FOUND);
}

/// A configured frontend URL turns its page off: the path is the API's JSON 404 again.
async fn a_configured_frontend_url_turns_its_page_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.frontend.verify_email_url = Some("https://app.example.com/verify/{key}/".into());
    })
    .await;
    let off = open(&app, &app.url("/verify-email/0123456789abcdef/")).await;
    crate::support::assert_detail(&off.reply, 404, messages::NOT_FOUND);
    let on = open(
        &app,
        &app.url("/password-reset/confirm/1/0123456789abcdef/"),
    )
    .await;
    assert_eq!(on.reply.status, 404);
    assert!(
        on.reply.text.contains("<!DOCTYPE html>"),
        "{}",
        on.reply.text
    );
}

/// Every answer of the pages: a same-origin referrer (so the form's `Origin` is not `null`),
/// no framing, no caching (the URL holds a secret), and a policy that allows no script, the
/// style by hash, and posting to the page itself.
async fn the_pages_carry_their_security_headers(backend: Backend) {
    let app = spawn(backend, AuthMode::Session).await;
    let link = sign_up(&app).await;
    let page = open(&app, &link).await;
    let invalid = open(&app, &app.url("/password-reset/confirm/1/abc/")).await;
    for reply in [&page.reply, &invalid.reply] {
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        let csp = reply.header("content-security-policy").unwrap();
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "style-src 'sha256-",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    // The API keeps its own.
    let api = app.get("user/", None).await;
    assert_eq!(api.header("referrer-policy"), Some("no-referrer"));
}

/// A file of the same name in `frontend.pages_templates_dir` is what is served; a broken one
/// stops startup, naming the file.
async fn an_override_template_is_served(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("verify_email.html"),
        "<p>Our own page for {{ email }} ({{ state }})</p>\
         {% if state == \"form\" %}<form method=\"post\"><input type=\"hidden\" \
         name=\"{{ csrf_field }}\" value=\"{{ csrf_token }}\"></form>{% endif %}",
    )
    .unwrap();
    let templates = dir.path().to_owned();
    let app = TestApp::spawn_with(backend.clone(), |config| {
        config.account.email_verification = EmailVerification::Mandatory;
        config.frontend.pages_templates_dir = Some(templates);
    })
    .await;
    let link = sign_up(&app).await;
    let page = open(&app, &link).await;
    assert_eq!(page.reply.status, 200);
    assert!(
        page.reply
            .text
            .starts_with(&format!("<p>Our own page for {EMAIL} (form)</p>")),
        "{}",
        page.reply.text
    );
    // The other page keeps its built-in template.
    let reset = open(&app, &app.url("/password-reset/confirm/1/abc/")).await;
    assert!(reset.reply.text.contains("<!DOCTYPE html>"));

    let broken = dir.path().join("password_reset.html");
    std::fs::write(&broken, "{{ new_pasword1 }}").unwrap();
    let database = crate::support::TestDb::create(&backend).await;
    let mut config = crate::support::test_config(&database);
    config.frontend.pages_templates_dir = Some(dir.path().to_owned());
    let err = tessera::App::build(config)
        .await
        .err()
        .expect("startup fails");
    let err = format!("{err:#}");
    assert!(err.contains(&broken.display().to_string()), "{err}");
    assert!(err.contains("undefined"), "{err}");
}

on_each_backend!(
    a_get_alone_confirms_nothing,
    forged_posts_are_refused_in_every_mode,
    unknown_links_show_a_message_and_no_form,
    a_configured_frontend_url_turns_its_page_off,
    the_pages_carry_their_security_headers,
    an_override_template_is_served,
);

/// The real binary's logs name the pages' paths without their key or token.
#[tokio::test]
async fn keys_and_tokens_stay_out_of_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_LOG__FORMAT", "text")];
    let mut server = crate::support::process::ServeProcess::start(dir.path(), &env, None);
    let client = crate::support::http_client();
    server.wait_ready(&client).await;
    let secret = "0123456789abcdef0123456789abcdefsecret";
    for path in [
        format!("/verify-email/{secret}/"),
        format!("/password-reset/confirm/1/{secret}/"),
    ] {
        let url = format!("{}{path}", server.base);
        let get = client.get(&url).send().await.unwrap();
        assert_eq!(
            get.status(),
            404,
            "{path}: {}",
            get.text().await.unwrap_or_default()
        );
        let post = client.post(&url).send().await.unwrap();
        assert_eq!(post.status(), 403);
    }
    let (_, logs, _) = server.stop();
    for path in [
        "path=/verify-email/[redacted]",
        "path=/password-reset/confirm/1/[redacted]",
    ] {
        assert!(
            logs.lines()
                .any(|line| line.contains("tessera::access") && line.contains(path)),
            "no access line with {path}:\n{logs}"
        );
    }
    assert!(
        !logs.contains(secret),
        "a key leaked into the logs:\n{logs}"
    );
}
