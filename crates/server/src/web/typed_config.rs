//! The create forms' per-type configuration fields for targets and issuers. Every type's
//! fieldset is on the page (a script may hide all but the selected type's); the server reads
//! only the selected type's fields and builds the JSON configuration from them, so the API
//! parses and validates it exactly as it would a configuration sent as JSON.
//!
//! The field lists mirror the typed configurations the API parses:
//! `certctl_api::target_config` for targets, the local CA and ACME issuer configurations for
//! issuers. The unit tests below check every listed key against those parsers.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::api_call::ApiFailure;
use super::form::Fields;

/// How a configuration value is entered and encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Text,
    /// Written once and never shown again.
    Secret,
    /// A whole number.
    Number,
    /// `true` when ticked, absent otherwise.
    Flag,
    /// `true`, `false` or absent (the type's default).
    YesNo,
    /// One of fixed values; the first option is the default.
    Options(&'static [&'static str]),
    /// A list of strings, comma-separated.
    List,
    /// A command as an argv array, split on whitespace.
    Argv,
    /// Multi-line text (PEM).
    Pem,
}

pub struct ConfigField {
    pub key: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub required: bool,
    pub hint: &'static str,
}

/// The fields of one type.
pub struct TypeFields {
    pub type_name: &'static str,
    pub fields: &'static [ConfigField],
}

/// The typed configuration of a resource's create form: per-type fields, and fields every
/// type shares (sent with whichever type is chosen).
pub struct TypedConfig {
    pub types: &'static [TypeFields],
    pub shared: &'static [ConfigField],
}

const fn req(key: &'static str, label: &'static str, input: Input, hint: &'static str) -> ConfigField {
    ConfigField { key, label, input, required: true, hint }
}

const fn opt(key: &'static str, label: &'static str, input: Input, hint: &'static str) -> ConfigField {
    ConfigField { key, label, input, required: false, hint }
}

const CERT_KEY_FILES: &[ConfigField] = &[
    req("cert_path", "Certificate path", Input::Text, "Absolute path, e.g. /etc/ssl/site.pem."),
    req("key_path", "Private key path", Input::Text, "Absolute path, e.g. /etc/ssl/site.key."),
    opt("chain_path", "Chain path", Input::Text, "Empty: the certificate file holds the leaf followed by the chain."),
];

const TARGETS: &[TypeFields] = &[
    TypeFields { type_name: "NGINX", fields: CERT_KEY_FILES },
    TypeFields { type_name: "Apache", fields: CERT_KEY_FILES },
    TypeFields {
        type_name: "HAProxy",
        fields: &[req("pem_path", "Combined PEM path", Input::Text, "Leaf, chain and key in one file.")],
    },
    TypeFields {
        type_name: "Traefik",
        fields: &[
            req("cert_dir", "Directory", Input::Text, "Absolute directory Traefik watches."),
            opt("cert_file", "Certificate file name", Input::Text, "Default cert.pem."),
            opt("key_file", "Key file name", Input::Text, "Default key.pem."),
        ],
    },
    TypeFields {
        type_name: "Caddy",
        fields: &[
            opt("mode", "Mode", Input::Options(&["file", "api"]), "file: Caddy reads cert_dir; api: its admin API."),
            opt("cert_dir", "Directory", Input::Text, "Required in file mode."),
            opt("cert_file", "Certificate file name", Input::Text, "Default cert.pem."),
            opt("key_file", "Key file name", Input::Text, "Default key.pem."),
            opt("admin_api", "Admin API URL", Input::Text, "Default http://127.0.0.1:2019."),
        ],
    },
    TypeFields {
        type_name: "Envoy",
        fields: &[
            req("cert_dir", "Directory", Input::Text, "Absolute directory."),
            opt("cert_filename", "Certificate file name", Input::Text, "Default cert.pem."),
            opt("key_filename", "Key file name", Input::Text, "Default key.pem."),
            opt("chain_filename", "Chain file name", Input::Text, ""),
            opt("sds_config", "Write an SDS document (sds.yaml)", Input::Flag, ""),
        ],
    },
    TypeFields { type_name: "Postfix", fields: CERT_KEY_FILES },
    TypeFields { type_name: "Dovecot", fields: CERT_KEY_FILES },
    TypeFields {
        type_name: "JavaKeystore",
        fields: &[
            req("keystore_path", "Keystore path", Input::Text, "Absolute path of the PKCS#12 file."),
            req("keystore_password", "Keystore password", Input::Secret, "Encrypted at rest; never shown again."),
            opt("alias", "Alias", Input::Text, "Default certctl."),
        ],
    },
    TypeFields {
        type_name: "File",
        fields: &[
            req("cert_path", "Certificate path", Input::Text, "Absolute path."),
            req("key_path", "Private key path", Input::Text, "Absolute path."),
            opt("chain_path", "Chain path", Input::Text, ""),
            opt("fullchain_path", "Full chain path", Input::Text, "Leaf followed by the chain."),
        ],
    },
];

const TARGET_SHARED: &[ConfigField] = &[
    opt(
        "validate_command",
        "Validate command",
        Input::Text,
        "Runs before the files go live; no shell. Empty: the type's default (e.g. nginx -t).",
    ),
    opt(
        "reload_command",
        "Reload command",
        Input::Text,
        "Runs after the files are in place; empty: the type's default.",
    ),
    opt(
        "verify_endpoint",
        "Verify endpoint",
        Input::Text,
        "host:port where the served certificate is checked; NGINX, Apache and HAProxy default to 127.0.0.1:443.",
    ),
    opt("verify_server_name", "Verify server name (SNI)", Input::Text, "Default: the certificate's name."),
    opt("verify", "Verify after deploying", Input::YesNo, "Empty: verify when there is an endpoint."),
    opt("backup_retention", "Backups kept per file", Input::Number, "Default 3."),
];

const ISSUERS: &[TypeFields] = &[
    TypeFields {
        type_name: "GenericCA",
        fields: &[
            opt("validity_days", "Leaf validity (days)", Input::Number, "Default 90."),
            opt(
                "key_algorithm",
                "CA key algorithm",
                Input::Options(&["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519"]),
                "For a generated root.",
            ),
            opt("common_name", "CA common name", Input::Text, ""),
            opt("organization", "CA organization", Input::Text, ""),
            opt("ca_validity_days", "Root validity (days)", Input::Number, "Default 3650."),
            opt(
                "ca_cert_path",
                "Sub-CA certificate path",
                Input::Text,
                "To sign with an existing CA instead of a generated root; needs the key too.",
            ),
            opt("ca_key_path", "Sub-CA key path", Input::Text, "Read by the server when the issuer is saved."),
            opt("ca_cert_pem", "Sub-CA certificate (PEM)", Input::Pem, "Instead of the path."),
            opt("ca_key_pem", "Sub-CA key (PEM)", Input::Pem, "Encrypted at rest; never shown again."),
        ],
    },
    TypeFields {
        type_name: "ACME",
        fields: &[
            req("directory_url", "Directory URL", Input::Text, "e.g. https://acme-v02.api.letsencrypt.org/directory"),
            opt("contact", "Contacts", Input::List, "Comma-separated e-mail addresses."),
            opt("eab_kid", "EAB key ID", Input::Text, "External account binding, when the CA asks for one."),
            opt("eab_hmac_key", "EAB HMAC key", Input::Secret, "base64url, as the CA hands it out."),
            opt("challenge", "Challenge", Input::Options(&["http-01", "dns-01"]), ""),
            opt("http01_listen", "http-01 listen address", Input::Text, "Default 0.0.0.0:80."),
            opt(
                "dns_present_command",
                "dns-01 present command",
                Input::Argv,
                "Required for dns-01; run without a shell with the record in CERTCTL_ACME_DNS_* variables.",
            ),
            opt("dns_cleanup_command", "dns-01 cleanup command", Input::Argv, ""),
            opt("dns_timeout_seconds", "DNS command timeout (s)", Input::Number, "Default 60."),
            opt("dns_propagation_seconds", "DNS propagation wait (s)", Input::Number, "Default 0."),
            opt("profile", "ACME profile", Input::Text, "A profile name the CA offers."),
            opt("ca_bundle_path", "CA bundle path", Input::Text, "PEM roots trusted for the ACME server's TLS."),
        ],
    },
];

/// The typed configuration of the resource at `path`, if its create form has one.
pub fn for_resource(path: &str) -> Option<&'static TypedConfig> {
    static TARGET: TypedConfig = TypedConfig { types: TARGETS, shared: TARGET_SHARED };
    static ISSUER: TypedConfig = TypedConfig { types: ISSUERS, shared: &[] };
    match path {
        "targets" => Some(&TARGET),
        "issuers" => Some(&ISSUER),
        _ => None,
    }
}

/// The form name of a field: unique per type, so fieldsets of types sharing a key never mix.
pub fn input_name(type_name: &str, key: &str) -> String {
    format!("cfg.{type_name}.{key}")
}

/// The group name of the shared fields.
pub const SHARED: &str = "shared";

/// A field as the form shows it.
pub struct ShownField {
    pub name: String,
    pub key: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub required: bool,
    /// `text`, `password`, `number`, `checkbox`, `select` or `textarea`.
    pub input: &'static str,
    pub options: &'static [&'static str],
    pub value: String,
    pub error: Option<String>,
}

impl ShownField {
    /// A select whose options do not offer "not set" gets an empty first choice, so the
    /// type's default applies unless one is picked.
    pub fn needs_blank(&self) -> bool {
        !self.options.contains(&"")
    }
}

/// One fieldset: a type's fields, or the shared ones (`type_name` [`SHARED`]).
pub struct Fieldset {
    pub type_name: &'static str,
    pub fields: Vec<ShownField>,
}

impl TypedConfig {
    /// The fieldsets with what was typed; `blamed` is the configuration key the API refused
    /// (`cert_path` of `config.cert_path`), shown at the selected type's field.
    pub fn fieldsets(&self, values: &Fields, blamed: Option<(&str, &str)>) -> Vec<Fieldset> {
        let set = |type_name: &'static str, fields: &'static [ConfigField], selected: bool| Fieldset {
            type_name,
            fields: fields
                .iter()
                .map(|f| {
                    let name = input_name(type_name, f.key);
                    let (input, options): (&str, &[&str]) = match f.input {
                        Input::Text | Input::List | Input::Argv => ("text", &[]),
                        Input::Secret => ("password", &[]),
                        Input::Number => ("number", &[]),
                        Input::Flag => ("checkbox", &[]),
                        Input::YesNo => ("select", &["", "true", "false"]),
                        Input::Options(o) => ("select", o),
                        Input::Pem => ("textarea", &[]),
                    };
                    // A secret is never sent back to the browser.
                    let value = if f.input == Input::Secret {
                        String::new()
                    } else {
                        values.get(&name).unwrap_or_default().to_owned()
                    };
                    let error = blamed.filter(|(key, _)| selected && *key == f.key).map(|(_, m)| m.to_owned());
                    ShownField {
                        name,
                        key: f.key,
                        label: f.label,
                        hint: f.hint,
                        required: f.required,
                        input,
                        options,
                        value,
                        error,
                    }
                })
                .collect(),
        };
        let chosen = values.get("type").unwrap_or_default();
        let mut out: Vec<Fieldset> =
            self.types.iter().map(|t| set(t.type_name, t.fields, t.type_name == chosen)).collect();
        if !self.shared.is_empty() {
            out.push(set(SHARED, self.shared, true));
        }
        out
    }

    /// Whether `key` is a field the form shows for `type_name`.
    pub fn shows(&self, type_name: &str, key: &str) -> bool {
        self.shared.iter().any(|f| f.key == key)
            || self.types.iter().any(|t| t.type_name == type_name && t.fields.iter().any(|f| f.key == key))
    }

    /// The configuration from the raw JSON (if any) and the chosen type's fields, which win.
    pub fn config(&self, type_name: &str, raw: Option<Map<String, Value>>, form: &Fields) -> Result<Value, ApiFailure> {
        let mut config = raw.unwrap_or_default();
        let typed = self.types.iter().find(|t| t.type_name == type_name);
        let groups = typed.map(|t| (t.type_name, t.fields)).into_iter().chain(
            // Shared fields apply to types that have a typed form.
            typed.is_some().then_some((SHARED, self.shared)),
        );
        for (group, fields) in groups {
            for f in fields {
                if let Some(v) = value(f, form.value(&input_name(group, f.key)))? {
                    config.insert(f.key.to_owned(), v);
                }
            }
        }
        Ok(Value::Object(config))
    }
}

/// A field's JSON value; `None` when left empty, so the type's default applies.
fn value(f: &ConfigField, raw: Option<String>) -> Result<Option<Value>, ApiFailure> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |why: &str| ApiFailure { status: StatusCode::BAD_REQUEST, message: format!("config.{}: {why}", f.key) };
    Ok(Some(match f.input {
        Input::Text | Input::Secret | Input::Pem | Input::Options(_) => json!(raw),
        Input::Number => json!(raw.parse::<i64>().map_err(|_| bad("must be a whole number"))?),
        Input::Flag => json!(raw == "on"),
        Input::YesNo => json!(raw == "true"),
        Input::List => json!(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>()),
        Input::Argv => json!(raw.split_whitespace().collect::<Vec<_>>()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use certctl_api::{TargetConfig, TargetType};

    /// A value of the right shape for `f`, which the parser accepts or refuses for its content
    /// only, never as an unknown key.
    fn sample(f: &ConfigField) -> Value {
        match f.input {
            Input::Number => json!(3),
            Input::Flag | Input::YesNo => json!(true),
            Input::List | Input::Argv => json!(["x"]),
            Input::Options(o) => json!(o[0]),
            _ => json!("/x"),
        }
    }

    #[test]
    fn every_target_field_is_a_key_of_its_type() {
        let typed = for_resource("targets").unwrap();
        for t in typed.types {
            let target_type: TargetType = serde_json::from_value(json!(t.type_name)).unwrap();
            for f in t.fields.iter().chain(typed.shared) {
                let config = Map::from_iter([(f.key.to_owned(), sample(f))]);
                if let Err(e) = TargetConfig::parse(target_type, &config) {
                    assert_ne!((e.field.as_str(), e.message.as_str()), (f.key, "unknown field"), "{}", t.type_name);
                }
            }
            // What the parser requires first is a field the form marks required.
            if let Err(e) = TargetConfig::parse(target_type, &Map::new())
                && e.message == "required"
            {
                assert!(t.fields.iter().any(|f| f.key == e.field && f.required), "{}: {}", t.type_name, e.field);
            }
        }
    }

    #[test]
    fn the_chosen_types_fields_become_the_configuration() {
        let typed = for_resource("targets").unwrap();
        let form = Fields::from_pairs(vec![
            ("type", "NGINX".into()),
            ("cfg.NGINX.cert_path", "/etc/ssl/a.pem".into()),
            ("cfg.Apache.cert_path", "/elsewhere".into()),
            ("cfg.shared.backup_retention", "5".into()),
            ("cfg.shared.verify", "false".into()),
            ("cfg.NGINX.chain_path", "  ".into()),
        ]);
        let raw = Map::from_iter([("key_path".to_owned(), json!("/k")), ("cert_path".to_owned(), json!("/old"))]);
        let config = typed.config("NGINX", Some(raw), &form).unwrap();
        assert_eq!(
            config,
            json!({"cert_path": "/etc/ssl/a.pem", "key_path": "/k", "backup_retention": 5, "verify": false})
        );
        let form = Fields::from_pairs(vec![("cfg.shared.backup_retention", "many".into())]);
        assert_eq!(
            typed.config("NGINX", None, &form).unwrap_err().message,
            "config.backup_retention: must be a whole number"
        );
        let acme = for_resource("issuers").unwrap();
        let form = Fields::from_pairs(vec![
            ("cfg.ACME.contact", "a@example.com, b@example.com".into()),
            ("cfg.ACME.dns_present_command", "/usr/local/bin/dns add".into()),
        ]);
        assert_eq!(
            acme.config("ACME", None, &form).unwrap(),
            json!({"contact": ["a@example.com", "b@example.com"], "dns_present_command": ["/usr/local/bin/dns", "add"]})
        );
    }
}
