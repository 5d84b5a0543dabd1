//! Configuration layering and its errors: defaults < file < DATABASE_URL < TESSERA_*.

use std::io::Write;

use tessera::Config;
use tessera::config::{AuthMode, EmailVerification, LoginMethod};

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

#[test]
fn defaults_need_no_file_and_no_environment() {
    let loaded = Config::load(None, vars(&[])).unwrap();
    let config = loaded.config;
    assert_eq!(config.database.url, "sqlite://tessera.db?mode=rwc");
    assert_eq!(config.auth.mode, AuthMode::Token);
    assert_eq!(
        config.account.email_verification,
        EmailVerification::Optional
    );
    assert_eq!(config.account.login_methods, vec![LoginMethod::Email]);
    assert_eq!(config.server.prefix, "/auth/");
    assert_eq!(config.server.max_body_bytes, 65536);
    assert_eq!(
        (
            config.password_hashing.memory_kib,
            config.password_hashing.iterations,
            config.password_hashing.parallelism
        ),
        (19456, 2, 1)
    );
    assert!(loaded.warnings.is_empty());
}

#[test]
fn environment_overrides_file_which_overrides_defaults() {
    let toml = file(
        "bind = \"0.0.0.0:9000\"\n[account]\nemail_verification = \"mandatory\"\npassword_min_length = 10\n",
    );
    let config = Config::load(
        Some(toml.path()),
        vars(&[
            ("TESSERA_ACCOUNT__PASSWORD_MIN_LENGTH", "12"),
            (
                "TESSERA_ACCOUNT__LOGIN_METHODS",
                "[\"email\", \"username\"]",
            ),
            ("TESSERA_SERVER__MAX_BODY_BYTES", "2048"),
            ("TESSERA_AUTH__OLD_PASSWORD_FIELD_ENABLED", "true"),
        ]),
    )
    .unwrap()
    .config;
    assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.account.email_verification,
        EmailVerification::Mandatory
    );
    assert_eq!(config.account.password_min_length, 12);
    assert_eq!(
        config.account.login_methods,
        vec![LoginMethod::Email, LoginMethod::Username]
    );
    assert_eq!(config.server.max_body_bytes, 2048);
    assert!(config.auth.old_password_field_enabled);
}

#[test]
fn database_url_is_honoured_below_tessera_variables() {
    let plain = Config::load(None, vars(&[("DATABASE_URL", "postgres://u@db/plain")])).unwrap();
    assert_eq!(plain.config.database.url, "postgres://u@db/plain");
    let both = Config::load(
        None,
        vars(&[
            ("DATABASE_URL", "postgres://u@db/plain"),
            ("TESSERA_DATABASE__URL", "postgres://u@db/ours"),
        ]),
    )
    .unwrap();
    assert_eq!(both.config.database.url, "postgres://u@db/ours");
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    let toml = file("[account]\nemail_verificaton = \"none\"\n");
    let err = Config::load(Some(toml.path()), vars(&[]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("email_verificaton"), "{err}");
}

#[test]
fn a_bad_value_is_an_error_naming_the_key_and_its_source() {
    let toml = file("[auth]\nmode = \"tokens\"\n");
    let err = Config::load(Some(toml.path()), vars(&[]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("auth.mode") && err.contains("tokens"), "{err}");

    let err = Config::load(None, vars(&[("TESSERA_SERVER__MAX_BODY_BYTES", "lots")]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("server.max_body_bytes") && err.contains("TESSERA_SERVER__MAX_BODY_BYTES"),
        "{err}"
    );
}

#[test]
fn unknown_tessera_variables_warn_and_non_settings_pass_silently() {
    let loaded = Config::load(
        None,
        vars(&[
            ("TESSERA_AUTH__MOD", "jwt"),
            ("TESSERA_CONFIG", "x.toml"),
            ("TESSERA_PASSWORD", "hunter2"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("TESSERA_AUTH__MOD"));
    assert_eq!(loaded.config.auth.mode, AuthMode::Token);
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let err = Config::load(
        Some(std::path::Path::new("/nonexistent/tessera.toml")),
        vars(&[]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("/nonexistent/tessera.toml"), "{err}");
}

#[test]
fn a_weak_secret_key_is_refused() {
    let err = Config::load(None, vars(&[("TESSERA_SECRET_KEY", "short")]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("secret_key is too short"), "{err}");
    assert!(
        !err.contains("short\""),
        "the key itself is not echoed: {err}"
    );
}

#[test]
fn an_all_digit_secret_key_stays_text() {
    let digits = "1234567890".repeat(4);
    let config = Config::load(None, vars(&[("TESSERA_SECRET_KEY", &digits)]))
        .unwrap()
        .config;
    use secrecy::ExposeSecret;
    assert_eq!(config.secret_key.unwrap().expose_secret(), digits);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let key = "a-very-secret-key-that-nobody-should-ever-see-123";
    let config = Config::load(
        None,
        vars(&[
            ("TESSERA_SECRET_KEY", key),
            ("TESSERA_DATABASE__URL", "postgres://app:dbpassw0rd@db/x"),
        ]),
    )
    .unwrap()
    .config;
    let debug = format!("{config:?}");
    assert!(!debug.contains(key), "{debug}");
    let serialized = serde_json::to_string(&config).unwrap();
    assert!(
        !serialized.contains(key) && !serialized.contains("dbpassw0rd"),
        "{serialized}"
    );
    assert_eq!(
        tessera::config::redact_url_password("postgres://app:dbpassw0rd@db/x"),
        "postgres://app:[redacted]@db/x"
    );
}

#[test]
fn every_rest_auth_mode_loads_and_a_misspelt_one_is_named() {
    for (name, mode) in [
        ("token", AuthMode::Token),
        ("jwt", AuthMode::Jwt),
        ("session", AuthMode::Session),
    ] {
        let loaded = Config::load(None, vars(&[("TESSERA_AUTH__MODE", name)])).unwrap();
        assert_eq!(loaded.config.auth.mode, mode);
    }
    let err = Config::load(None, vars(&[("TESSERA_AUTH__MODE", "sessions")]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("auth.mode") && err.contains("TESSERA_AUTH__MODE"),
        "{err}"
    );
}

#[test]
fn the_example_file_lists_every_setting_and_loads() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tessera.example.toml");
    let loaded = Config::load(Some(&example), vars(&[])).unwrap();
    let text = std::fs::read_to_string(&example).unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    // Every table has its `[header]` and every key its `key =` line, nested tables included.
    fn listed(text: &str, path: &str, value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(keys) if !path.is_empty() => {
                assert!(text.contains(&format!("[{path}]")), "[{path}] missing");
                for (key, value) in keys {
                    listed(text, &format!("{path}.{key}"), value);
                }
            }
            serde_json::Value::Object(keys) => {
                for (key, value) in keys {
                    listed(text, key, value);
                }
            }
            _ => {
                let key = path.rsplit('.').next().unwrap();
                assert!(text.contains(&format!("{key} =")), "{path} missing");
            }
        }
    }
    listed(&text, "", &defaults);
    assert_eq!(loaded.config.database.url, Config::default().database.url);
}

#[test]
fn public_url_follows_bind_unless_it_is_set() {
    let load = |pairs: &[(&str, &str)]| Config::load(None, vars(pairs)).unwrap().config;
    let config = load(&[("TESSERA_BIND", "127.0.0.1:9000")]);
    assert_eq!(config.public_url.as_str(), "http://127.0.0.1:9000/");
    // Every interface is no address for a link: the loopback one stands in.
    let config = load(&[("TESSERA_BIND", "0.0.0.0:8080")]);
    assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
    let config = load(&[("TESSERA_BIND", "[::]:8080")]);
    assert_eq!(config.public_url.as_str(), "http://[::1]:8080/");
    let config = load(&[
        ("TESSERA_BIND", "0.0.0.0:8080"),
        ("TESSERA_PUBLIC_URL", "https://accounts.example.com"),
    ]);
    assert_eq!(config.public_url.as_str(), "https://accounts.example.com/");
    let set_in_file = file("bind = \"127.0.0.1:7000\"\npublic_url = \"https://a.example.com\"\n");
    let config = Config::load(Some(set_in_file.path()), vars(&[]))
        .unwrap()
        .config;
    assert_eq!(config.public_url.as_str(), "https://a.example.com/");
}

#[test]
fn bind_takes_localhost_and_names_a_bad_address() {
    let config = Config::load(None, vars(&[("TESSERA_BIND", "localhost:8001")]))
        .unwrap()
        .config;
    assert_eq!(config.bind.to_string(), "127.0.0.1:8001");
    assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8001/");
    let in_file = file("bind = \"localhost:7001\"\n");
    let config = Config::load(Some(in_file.path()), vars(&[]))
        .unwrap()
        .config;
    assert_eq!(config.bind.to_string(), "127.0.0.1:7001");
    let err = Config::load(None, vars(&[("TESSERA_BIND", "example.com:80")]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("bind") && err.contains("example.com:80"),
        "{err}"
    );
}

#[test]
fn cors_origins_take_one_string_or_a_list() {
    let origins = |pairs: &[(&str, &str)]| {
        Config::load(None, vars(pairs))
            .unwrap()
            .config
            .cors
            .allowed_origins
    };
    assert_eq!(
        origins(&[("TESSERA_CORS__ALLOWED_ORIGINS", "https://app.example.com")]),
        ["https://app.example.com"]
    );
    assert_eq!(
        origins(&[(
            "TESSERA_CORS__ALLOWED_ORIGINS",
            r#"["https://a.example.com", "https://b.example.com"]"#
        )]),
        ["https://a.example.com", "https://b.example.com"]
    );
    let one = file("[cors]\nallowed_origins = \"https://app.example.com\"\n");
    let config = Config::load(Some(one.path()), vars(&[])).unwrap().config;
    assert_eq!(config.cors.allowed_origins, ["https://app.example.com"]);
}

#[test]
fn messages_point_at_the_cause_in_the_configurations_own_words() {
    let typo = file("[server]\nprefx = \"/x/\"\n");
    let err = Config::load(Some(typo.path()), vars(&[]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("there is no setting `server.prefx` (did you mean `prefix`?)"),
        "{err}"
    );
    assert!(
        !err.contains("default.") && !err.contains("TOML file"),
        "{err}"
    );
    assert_eq!(err.matches("prefx").count(), 1, "said once: {err}");

    let loaded = Config::load(None, vars(&[("TESSERA_AUTH__MOD", "jwt")])).unwrap();
    assert!(
        loaded.warnings[0].contains("did you mean TESSERA_AUTH__MODE?"),
        "{:?}",
        loaded.warnings
    );

    let err = Config::load(
        None,
        vars(&[("TESSERA_DATABASE__URL", "mysql://u:pw@db/x")]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
    assert!(!err.contains("pw@"), "the password is redacted: {err}");
}
