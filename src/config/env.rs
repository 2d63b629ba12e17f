//! Environment overrides: which variable sets which field ([`SETTINGS`]), how its text becomes a
//! value in the file's tree before typed deserialization (so an error still names the field),
//! and the docs' table of them, rendered from the same rows.

use std::collections::HashMap;

use serde_norway::Value;

use super::{Config, ConfigError, Overrides};

mod settings;

pub use settings::{PROCESS_VARIABLES, SETTINGS};

/// How a variable's text becomes a YAML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Taken as it is: a duration, a path, a name.
    Text,
    /// Parsed as YAML so `true`/`false` become booleans and numbers numbers.
    Scalar,
    /// Comma-separated list.
    List,
}

/// One setting of `proxy.yaml`.
#[derive(Debug)]
pub struct Setting {
    /// The dotted path in the file.
    pub field: &'static str,
    /// The variable that overrides it; `None`: file only, and `doc` says why.
    pub env: Option<&'static str>,
    pub kind: Kind,
    /// One line for the docs' table.
    pub doc: &'static str,
}

/// The markers around the rendered table in `docs/configuration.md`.
pub const TABLE_BEGIN: &str = "<!-- env-table:begin -->";
pub const TABLE_END: &str = "<!-- env-table:end -->";

/// Writes every variable of `env` that overrides a field into `tree`, and returns which field
/// each one set (for the error messages), in the order applied.
pub(super) fn apply(
    tree: &mut Value,
    env: &HashMap<String, String>,
) -> Vec<(&'static str, &'static str)> {
    let mut origins = Vec::new();
    for setting in SETTINGS {
        let Some(var) = setting.env else { continue };
        if let Some(raw) = env.get(var) {
            origins.push((setting.field, var));
            set_path(tree, setting.field, value_of(setting.kind, raw));
        }
    }
    origins
}

fn value_of(kind: Kind, raw: &str) -> Value {
    match kind {
        Kind::Text => Value::String(raw.to_owned()),
        Kind::Scalar => {
            serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
        Kind::List => Value::Sequence(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
    }
}

pub(super) fn set_path(tree: &mut Value, dotted: &str, value: Value) {
    let mut node = tree;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_mapping() {
            *node = Value::Mapping(Default::default());
        }
        let Some(map) = node.as_mapping_mut() else {
            return;
        };
        let key = Value::String(part.to_owned());
        if parts.peek().is_none() {
            map.insert(key, value);
            return;
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
}

/// A config with every block on and only what has no default set: its values are the defaults
/// the table shows, so they come from the code and cannot drift from it.
const REQUIRED: &[(&str, &str)] = &[
    ("upstream.url", "http://127.0.0.1:3000"),
    ("sessions.secret", "0123456789abcdef0123456789abcdef"),
    ("tls.cert", "cert.pem"),
    ("tls.key", "key.pem"),
    ("assertion.key", "assertion.pem"),
];

/// The docs' table of variables (markdown), between [`TABLE_BEGIN`] and [`TABLE_END`] in
/// `docs/configuration.md`: one row a setting, with its default read from the code.
pub fn markdown_table() -> Result<String, ConfigError> {
    let mut tree = Value::Mapping(Default::default());
    for (field, value) in REQUIRED {
        set_path(&mut tree, field, Value::String((*value).to_owned()));
    }
    let text = serde_norway::to_string(&tree).unwrap_or_default();
    let config = Config::from_yaml(&text, &HashMap::new(), &Overrides::default())?;
    let defaults = serde_norway::to_value(&config).unwrap_or(Value::Null);
    let mut out = String::from("| variable | setting | default | meaning |\n|---|---|---|---|\n");
    for (var, default, doc) in PROCESS_VARIABLES {
        out.push_str(&format!("| `{var}` | | {default} | {doc} |\n"));
    }
    for s in SETTINGS {
        let var = s
            .env
            .map_or_else(|| "(file only)".to_owned(), |v| format!("`{v}`"));
        let default = if REQUIRED.iter().any(|(field, _)| *field == s.field) {
            "required".to_owned()
        } else {
            render_default(lookup(&defaults, s.field))
        };
        let list = if s.kind == Kind::List {
            " (comma-separated)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {var} | `{}` | {default} | {}{list} |\n",
            s.field, s.doc
        ));
    }
    Ok(out)
}

fn lookup<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(tree, |node, part| node.get(part))
}

fn render_default(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => return "unset".to_owned(),
        Some(Value::String(s)) if s.is_empty() => return "empty".to_owned(),
        Some(Value::Sequence(items)) if items.is_empty() => return "none".to_owned(),
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        Some(other) => scalar(other),
    };
    format!("`{text}`")
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
