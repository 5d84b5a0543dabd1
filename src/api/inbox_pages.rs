//! `/_inbox/`: the development inbox's pages (see `mail::inbox`). Plain HTML, escaped by
//! minijinja; links in the text part are made clickable (only `http(s)://` ones, so no
//! script can hide in one). Served only with `email.backend = "inbox"`, which `config`
//! allows on a loopback bind only.

use minijinja::Value;
use minijinja::{Environment, context};
use poem::http::StatusCode;
use poem::web::{Html, Path};
use poem::{Endpoint, EndpointExt, Route, get, handler, web::Data};

use crate::mail::inbox::Inbox;

const LIST: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inbox: {{ site_name }}</title></head>
<body>
<h1>Inbox</h1>
<p>The last {{ capacity }} messages this server sent (<code>email.backend = "inbox"</code>),
newest first. They live in memory until it stops.</p>
{% if messages %}
<table>
<thead><tr><th>Sent</th><th>To</th><th>Subject</th></tr></thead>
<tbody>
{% for m in messages %}<tr><td>{{ m.at }}</td><td>{{ m.to }}</td><td><a href="/_inbox/{{ m.id }}">{{ m.subject }}</a></td></tr>
{% endfor %}</tbody>
</table>
{% else %}<p>No messages yet.</p>{% endif %}
</body></html>
"#;

const MESSAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ m.subject }}</title></head>
<body>
<p><a href="/_inbox/">Inbox</a></p>
<h1>{{ m.subject }}</h1>
<dl><dt>From</dt><dd>{{ m.from }}</dd><dt>To</dt><dd>{{ m.to }}</dd><dt>Sent</dt><dd>{{ m.at }}</dd></dl>
<pre>{% for part in text %}{% if part.link %}<a href="{{ part.text }}">{{ part.text }}</a>{% else %}{{ part.text }}{% endif %}{% endfor %}</pre>
</body></html>
"#;

/// The inbox's routes, under `/_inbox`.
pub fn routes(inbox: Inbox, site_name: &str) -> impl Endpoint + 'static {
    let pages = Pages::new(site_name);
    Route::new()
        .at("/", get(list))
        .at("/:id", get(message))
        .data(inbox)
        .data(pages)
}

#[derive(Clone)]
struct Pages {
    env: std::sync::Arc<Environment<'static>>,
    site_name: String,
}

impl Pages {
    fn new(site_name: &str) -> Self {
        let mut env = Environment::new();
        // The `.html` names turn on HTML escaping.
        env.add_template("list.html", LIST)
            .expect("the inbox list template parses");
        env.add_template("message.html", MESSAGE)
            .expect("the inbox message template parses");
        Self {
            env: std::sync::Arc::new(env),
            site_name: site_name.to_owned(),
        }
    }

    fn render(&self, name: &str, context: minijinja::Value) -> poem::Result<Html<String>> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map(Html)
            .map_err(|err| {
                tracing::error!(error = %err, "rendering the inbox");
                poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
            })
    }
}

#[handler]
fn list(inbox: Data<&Inbox>, pages: Data<&Pages>) -> poem::Result<Html<String>> {
    pages.render(
        "list.html",
        context! {
            messages => Value::from(minijinja::value::Serde(inbox.list())),
            capacity => crate::mail::inbox::CAPACITY,
            site_name => pages.site_name.as_str(),
        },
    )
}

#[handler]
fn message(
    Path(id): Path<u64>,
    inbox: Data<&Inbox>,
    pages: Data<&Pages>,
) -> poem::Result<Html<String>> {
    let Some(message) = inbox.get(id) else {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    };
    let text = linked(&message.message.text);
    pages.render(
        "message.html",
        context! { m => Value::from(minijinja::value::Serde(&message)), text => Value::from(minijinja::value::Serde(&text)) },
    )
}

/// `text` cut into plain runs and `http(s)://` links.
#[derive(serde::Serialize)]
struct Part {
    text: String,
    link: bool,
}

fn linked(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let end = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .map_or(rest.len(), |len| start + len);
        parts.push(Part {
            text: rest[..start].to_owned(),
            link: false,
        });
        parts.push(Part {
            text: rest[start..end].to_owned(),
            link: true,
        });
        rest = &rest[end..];
    }
    parts.push(Part {
        text: rest.to_owned(),
        link: false,
    });
    parts
}
