//! The Spin application manifest (`spin.toml`, `spin_manifest_version = 2`): reading it, resolving its
//! variables the way Spin does, and turning each component's section into what the runtime needs.
//!
//! Paths in the manifest are relative to the manifest's folder. Everything is checked at startup, so a
//! host that is serving has no manifest errors left to meet.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outbound::{AllowedHosts, PatternError};
use crate::routes::{Route, RouteError};

/// Errors in a manifest or in the values its variables take.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a manifest this host understands.
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// Not `spin_manifest_version = 2`.
    #[error("spin_manifest_version must be 2, found {0}")]
    Version(i64),
    /// A variable name Spin would refuse.
    #[error(
        "variable name {0:?} must be lowercase letters, digits and underscores, starting with a letter"
    )]
    VariableName(String),
    /// A variable declared neither with a default nor as required, or as both.
    #[error("variable {0:?} must have exactly one of `default` and `required = true`")]
    VariableDeclaration(String),
    /// A required variable without a value.
    #[error("variable {name:?} is required: set the environment variable {env}")]
    MissingVariable { name: String, env: String },
    /// A template that does not parse.
    #[error("bad template {template:?}: {reason}")]
    Template {
        template: String,
        reason: &'static str,
    },
    /// A template naming an undeclared variable.
    #[error("template {template:?} names the undeclared variable {name:?}")]
    UnknownVariable { template: String, name: String },
    /// A trigger names a component that is not defined.
    #[error("trigger for route {route:?} names the undefined component {component:?}")]
    UnknownComponent { route: String, component: String },
    /// A route that does not parse, or a duplicate.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A component feature this host does not implement.
    #[error("component {component:?}: {what} is not supported by this host")]
    Unsupported {
        component: String,
        what: &'static str,
    },
    /// A `files` entry this host cannot mount.
    #[error("component {component:?}: files entry {source_path:?}: {reason}")]
    Files {
        component: String,
        source_path: String,
        reason: &'static str,
    },
    /// An `allowed_outbound_hosts` entry that does not parse.
    #[error("component {component:?}: {source}")]
    Outbound {
        component: String,
        source: PatternError,
    },
}

// `[application]` (name, version, authors, description) changes nothing at run time.
#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: toml::Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

// `secret` only hides a value from Spin's logs; this host logs no values, so it is not read.
#[derive(Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    files: Vec<RawFiles>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFiles {
    Path(String),
    Mapped { source: String, destination: String },
}

/// A checked application: routes, components and the values of its variables.
#[derive(Debug)]
pub struct Manifest {
    /// The HTTP routes, in manifest order.
    pub routes: Vec<(Route, String)>,
    /// The components by id.
    pub components: BTreeMap<String, ComponentConfig>,
    /// The application variables' values.
    pub variables: HashMap<String, String>,
}

/// What the runtime needs of one component.
#[derive(Debug)]
pub struct ComponentConfig {
    /// The component's `.wasm` file.
    pub source: PathBuf,
    /// Folders mounted read-only: (host folder, guest path).
    pub mounts: Vec<(PathBuf, String)>,
    /// The key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// Where the component may send HTTP requests.
    pub allowed_hosts: AllowedHosts,
    /// The component's variables, templates rendered.
    pub variables: HashMap<String, String>,
    /// The component's environment variables.
    pub environment: Vec<(String, String)>,
}

impl Manifest {
    /// Reads and checks the manifest at `path`; `env` looks up environment variables (for
    /// `SPIN_VARIABLE_<NAME>`).
    /// The variables of the manifest at `path` declared `secret = true` with a default: the
    /// well-known values the host replaces with secrets of its own ([`crate::secrets`]).
    pub fn secrets_with_defaults(path: &Path) -> Result<Vec<String>, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: RawManifest = toml::from_str(&text).map_err(|source| ManifestError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Ok(raw
            .variables
            .into_iter()
            .filter(|(_, variable)| variable.secret && variable.default.is_some())
            .map(|(name, _)| name)
            .collect())
    }

    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, env).map_err(|error| match error {
            ParseFailure::Toml(source) => ManifestError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            },
            ParseFailure::Manifest(error) => error,
        })
    }

    fn parse(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ParseFailure> {
        let raw: RawManifest = toml::from_str(text).map_err(ParseFailure::Toml)?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Version(raw.spin_manifest_version).into());
        }
        let variables = resolve_variables(&raw.variables, env)?;
        let mut routes = Vec::with_capacity(raw.trigger.http.len());
        for trigger in raw.trigger.http {
            let (route, text) = match trigger.route {
                RawRoute::Path(path) => (Route::parse(&path)?, path),
                RawRoute::Private { private } => {
                    if !private {
                        return Err(ManifestError::Route(RouteError::Invalid(
                            "private = false".into(),
                        ))
                        .into());
                    }
                    (Route::Private, "private".to_owned())
                }
            };
            let toml::Value::String(component) = trigger.component else {
                return Err(ManifestError::Unsupported {
                    component: text,
                    what: "an inline component in a trigger",
                }
                .into());
            };
            if !raw.component.contains_key(&component) {
                return Err(ManifestError::UnknownComponent {
                    route: text,
                    component,
                }
                .into());
            }
            routes.push((route, component));
        }
        let mut components = BTreeMap::new();
        for (id, component) in raw.component {
            let config = component_config(&id, component, base, &variables)?;
            components.insert(id, config);
        }
        Ok(Self {
            routes,
            components,
            variables,
        })
    }
}

enum ParseFailure {
    Toml(toml::de::Error),
    Manifest(ManifestError),
}

impl From<ManifestError> for ParseFailure {
    fn from(error: ManifestError) -> Self {
        Self::Manifest(error)
    }
}

impl From<RouteError> for ParseFailure {
    fn from(error: RouteError) -> Self {
        Self::Manifest(error.into())
    }
}

fn component_config(
    id: &str,
    raw: RawComponent,
    base: &Path,
    variables: &HashMap<String, String>,
) -> Result<ComponentConfig, ManifestError> {
    let unsupported = |what| ManifestError::Unsupported {
        component: id.to_owned(),
        what,
    };
    let toml::Value::String(source) = raw.source else {
        return Err(unsupported("a source that is not a local file path"));
    };
    // Spin's other component keys: `build`, `description` and `dependencies_inherit_configuration`
    // change nothing at run time here; anything else would be silently ignored, so it is refused.
    for key in raw.other.keys() {
        match key.as_str() {
            "build" | "description" | "exclude_files" | "dependencies_inherit_configuration" => {}
            "sqlite_databases" => return Err(unsupported("sqlite_databases")),
            "ai_models" => return Err(unsupported("ai_models")),
            "dependencies" => return Err(unsupported("component dependencies")),
            _ => return Err(unsupported("an unknown component key")),
        }
    }
    let mut mounts = Vec::with_capacity(raw.files.len());
    for files in raw.files {
        let (source, destination) = match files {
            RawFiles::Path(path) => {
                let destination = format!("/{}", path.trim_start_matches("./"));
                (path, destination)
            }
            RawFiles::Mapped {
                source,
                destination,
            } => (source, destination),
        };
        let files_error = |reason| ManifestError::Files {
            component: id.to_owned(),
            source_path: source.clone(),
            reason,
        };
        if source.contains(['*', '?', '[']) {
            return Err(files_error(
                "glob patterns are not supported; name a folder",
            ));
        }
        if !destination.starts_with('/') {
            return Err(files_error("the destination must be an absolute path"));
        }
        let host = base.join(&source);
        if !host.is_dir() {
            return Err(files_error("not a folder (only folders can be mounted)"));
        }
        mounts.push((host, destination));
    }
    let mut component_variables = HashMap::with_capacity(raw.variables.len());
    for (name, template) in raw.variables {
        check_variable_name(&name)?;
        component_variables.insert(name, render(&template, variables)?);
    }
    let mut hosts = Vec::with_capacity(raw.allowed_outbound_hosts.len());
    for pattern in &raw.allowed_outbound_hosts {
        hosts.push(render(pattern, variables)?);
    }
    let allowed_hosts = AllowedHosts::parse(&hosts).map_err(|source| ManifestError::Outbound {
        component: id.to_owned(),
        source,
    })?;
    Ok(ComponentConfig {
        source: base.join(source),
        mounts,
        key_value_stores: raw.key_value_stores,
        allowed_hosts,
        variables: component_variables,
        environment: raw.environment.into_iter().collect(),
    })
}

fn check_variable_name(name: &str) -> Result<(), ManifestError> {
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ManifestError::VariableName(name.to_owned()))
    }
}

/// The environment variable that overrides application variable `name`, as Spin names it.
pub fn variable_env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

fn resolve_variables(
    declared: &BTreeMap<String, RawVariable>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>, ManifestError> {
    let mut values = HashMap::with_capacity(declared.len());
    for (name, declaration) in declared {
        check_variable_name(name)?;
        if declaration.required == declaration.default.is_some() {
            return Err(ManifestError::VariableDeclaration(name.clone()));
        }
        let env_name = variable_env_name(name);
        let value = env(&env_name)
            .or_else(|| declaration.default.clone())
            .ok_or(ManifestError::MissingVariable {
                name: name.clone(),
                env: env_name,
            })?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Renders a Spin template: `{{ name }}` becomes the application variable's value.
pub fn render(
    template: &str,
    variables: &HashMap<String, String>,
) -> Result<String, ManifestError> {
    let bad = |reason| ManifestError::Template {
        template: template.to_owned(),
        reason,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| bad("`{{` without `}}`"))?;
        let name = after[..close].trim();
        if name.is_empty() {
            return Err(bad("empty `{{ }}`"));
        }
        let value = variables
            .get(name)
            .ok_or_else(|| ManifestError::UnknownVariable {
                template: template.to_owned(),
                name: name.to_owned(),
            })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(bad("`}}` without `{{`"));
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Manifest::parse(text, dir.path(), |name| env.get(name).cloned()).map_err(|e| match e {
            ParseFailure::Toml(e) => panic!("toml: {e}"),
            ParseFailure::Manifest(e) => e,
        })
    }

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
domain = { default = "localhost" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/sender/..."
component = "sender-as"
[[trigger.http]]
route = { private = true }
component = "static"
[component.sender-as]
source = "target/sender_as.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://{{ domain }}:5561", "http://receiver-as.spin.internal"]
environment = { RUST_LOG = "info" }
[component.sender-as.variables]
domain = "{{domain}}"
as_host = "sender-as.{{ domain }}"
token = "{{ token }}"
[component.sender-as.build]
command = "cargo build"
[component.static]
source = "static.wasm"
files = [{ source = "www", destination = "/" }, "www"]
"#;

    #[test]
    fn a_full_manifest_resolves_variables_templates_and_mounts() {
        let manifest = parse(APP, &[("SPIN_VARIABLE_TOKEN", "s3cret")]).unwrap();
        let sender = &manifest.components["sender-as"];
        assert_eq!(sender.variables["as_host"], "sender-as.localhost");
        assert_eq!(sender.variables["token"], "s3cret");
        assert!(sender.source.ends_with("target/sender_as.wasm"));
        assert!(sender.allowed_hosts.allows("http", "localhost", 5561));
        assert!(
            sender
                .allowed_hosts
                .allows("http", "receiver-as.spin.internal", 80)
        );
        assert!(!sender.allowed_hosts.allows("http", "localhost", 80));
        assert_eq!(sender.environment, vec![("RUST_LOG".into(), "info".into())]);
        let mounts: Vec<_> = manifest.components["static"]
            .mounts
            .iter()
            .map(|(_, guest)| guest.as_str())
            .collect();
        assert_eq!(mounts, ["/", "/www"]);
        assert_eq!(manifest.routes.len(), 2);
    }

    #[test]
    fn environment_overrides_defaults() {
        let manifest = parse(
            APP,
            &[
                ("SPIN_VARIABLE_TOKEN", "t"),
                ("SPIN_VARIABLE_DOMAIN", "example.com"),
            ],
        )
        .unwrap();
        assert_eq!(manifest.variables["domain"], "example.com");
        assert_eq!(
            manifest.components["sender-as"].variables["as_host"],
            "sender-as.example.com"
        );
    }

    #[test]
    fn a_missing_required_variable_refuses_to_start() {
        let error = parse(APP, &[]).unwrap_err();
        assert!(
            matches!(&error, ManifestError::MissingVariable { name, env } if name == "token" && env == "SPIN_VARIABLE_TOKEN"),
            "{error}"
        );
    }

    #[test]
    fn bad_manifests_are_refused_with_reasons() {
        let cases = [
            (
                APP.replace("component = \"static\"", "component = \"nope\""),
                "undefined component",
            ),
            (
                APP.replace("{{ domain }}:5561", "{{ domian }}:5561"),
                "undeclared",
            ),
            (APP.replace("\"www\"]", "\"www/**\"]"), "glob"),
            (APP.replace("\"www\"]", "\"nowhere\"]"), "not a folder"),
            (
                APP.replace("spin_manifest_version = 2", "spin_manifest_version = 1"),
                "must be 2",
            ),
            (
                APP.replace("domain = { default", "Domain = { default"),
                "lowercase",
            ),
            (APP.replace("required = true,", ""), "exactly one"),
            (
                APP.replace("key_value_stores", "sqlite_databases"),
                "not supported",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&text, &[("SPIN_VARIABLE_TOKEN", "t")])
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
    }

    #[test]
    fn templates_render_and_reject_malformed_text() {
        let vars = HashMap::from([("a".to_owned(), "1".to_owned())]);
        assert_eq!(render("x{{a}}y{{ a }}", &vars).unwrap(), "x1y1");
        assert_eq!(render("plain", &vars).unwrap(), "plain");
        for bad in ["{{ a", "{{}}", "a }}", "{{ b }}"] {
            assert!(render(bad, &vars).is_err(), "{bad}");
        }
    }
}
