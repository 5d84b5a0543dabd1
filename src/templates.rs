//! Templates built into the binary, each replaceable by a file of the same name in a configured
//! directory: the emails' (`email.templates_dir`) and the email-link pages'
//! (`frontend.pages_templates_dir`). One loader, so both behave alike: a missing directory is
//! an error, a file there that matches no template is a warning, a misspelt variable is an
//! error, and errors name the file but never carry the values rendered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};

/// Why templates could not be loaded or rendered. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{setting} {}: {source}", path.display())]
    Dir {
        /// The setting that named the directory (`email.templates_dir`).
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {what} template {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error, or a render error such as an undefined variable.
    #[error("{what} template {file}: {source}")]
    Template {
        what: &'static str,
        /// The override's path, or `built-in NAME`.
        file: String,
        source: minijinja::Error,
    },
}

/// A set of templates: the built-in ones, with any overrides from the directory.
pub struct TemplateSet {
    env: Environment<'static>,
    /// `email` or `page`, for error messages.
    what: &'static str,
    /// Template name → where it came from, for error messages.
    origins: HashMap<&'static str, String>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl TemplateSet {
    /// `built_in` (name, source) pairs, each replaced by `<dir>/<same name>` when that file
    /// exists. `.html` names are HTML-escaped. The caller test-renders every template with its
    /// documented context right after, so a broken override stops startup.
    pub fn load(
        what: &'static str,
        setting: &'static str,
        built_in: &[(&'static str, &'static str)],
        dir: Option<&Path>,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // A misspelt variable must fail loudly, not render as an empty link.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Debug info copies the render context (live keys and tokens) into errors.
        env.set_debug(false);
        env.set_formatter(escape_like_django);

        if let Some(dir) = dir {
            check_dir(setting, dir, built_in)?;
        }
        let mut origins = HashMap::new();
        for &(name, source) in built_in {
            let override_path = dir.map(|dir| dir.join(name)).filter(|path| path.is_file());
            let result = match &override_path {
                Some(path) => {
                    let source =
                        std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
                            what,
                            path: path.clone(),
                            source,
                        })?;
                    origins.insert(name, path.display().to_string());
                    env.add_template_owned(name, source)
                }
                None => {
                    origins.insert(name, format!("built-in {name}"));
                    env.add_template(name, source)
                }
            };
            result.map_err(|source| TemplateError::Template {
                what,
                file: origins[name].clone(),
                source,
            })?;
        }
        Ok(Self { env, what, origins })
    }

    /// Renders template `name` with `context`; an error names the file, not the values.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        let error = |source| TemplateError::Template {
            what: self.what,
            file: self
                .origins
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_owned()),
            source,
        };
        self.env
            .get_template(name)
            .map_err(error)?
            .render(context)
            .map_err(error)
    }
}

/// The override directory must exist: a typo in its path must not silently fall back to the
/// built-in templates. Files in it that match no template are reported, for the same reason.
fn check_dir(
    setting: &'static str,
    dir: &Path,
    built_in: &[(&'static str, &'static str)],
) -> Result<(), TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Dir {
        setting,
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let looks_like_template = name.ends_with(".txt") || name.ends_with(".html");
        if looks_like_template && !built_in.iter().any(|(known, _)| *known == name) {
            tracing::warn!(
                file = %entry.path().display(),
                setting,
                "ignoring a file in the templates directory that matches no template"
            );
        }
    }
    Ok(())
}

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which mangles every link in an
/// `href`. Escape the five characters Django and Jinja2 escape instead; everything else
/// (text templates, values marked safe, undefined checks) stays minijinja's.
fn escape_like_django(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if *state.auto_escape() != AutoEscape::Html || value.is_safe() || value.is_undefined() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(minijinja::Error::from)
}
