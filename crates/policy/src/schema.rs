//! The JSON Schema of `admin-settings.json` (draft-07, for editors), generated from the key table
//! the parser validates with, so the two cannot drift. The checked-in copy,
//! `crates/policy/schema/admin-settings.schema.json`, is held equal to [`admin_settings_schema`]
//! by a test (`STOCKADE_BLESS=1 cargo test -p stockade-policy` rewrites it).
//!
//! What the schema cannot say, and only the parser checks: duplicate keys, the 1 MiB size limit,
//! UTF-8 and strict JSON syntax, the JSON inside `linuxVM.dockerDaemonOptions.value` (and the
//! hardening keys it may not set), and whole numbers written with a fraction (`2.0`), which JSON
//! Schema counts as integers and Stockade, like Docker Desktop, does not.

use serde_json::{json, Map, Value};

use crate::shape::{Effect, Field, Presence, Shape, ROOT};

/// The schema as checked in.
pub const ADMIN_SETTINGS_SCHEMA: &str = include_str!("../schema/admin-settings.schema.json");

/// Generates the schema.
pub fn admin_settings_schema() -> Value {
    let mut schema = shape_schema(&ROOT);
    if let Value::Object(map) = &mut schema {
        map.insert(
            "$schema".to_owned(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        map.insert(
            "title".to_owned(),
            json!("Stockade admin-settings.json (Docker Desktop Settings Management, configurationFileVersion 2)"),
        );
    }
    schema
}

/// The schema pretty-printed with a final newline, as the checked-in file holds it.
pub fn admin_settings_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&admin_settings_schema()).unwrap_or_default();
    text.push('\n');
    text
}

fn shape_schema(shape: &Shape) -> Value {
    match shape {
        Shape::Bool => json!({"type": "boolean"}),
        Shape::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Shape::Version => json!({"type": "integer", "const": crate::shape::FILE_VERSION}),
        Shape::Str(rule) => {
            let mut map = Map::new();
            map.insert("type".to_owned(), json!("string"));
            if let Some(pattern) = rule.pattern {
                map.insert("pattern".to_owned(), json!(pattern));
            }
            if !rule.description.is_empty() {
                map.insert("description".to_owned(), json!(rule.description));
            }
            Value::Object(map)
        }
        Shape::Enum(values) => json!({"type": "string", "enum": values}),
        Shape::Array(item) => json!({"type": "array", "items": shape_schema(item)}),
        Shape::Object(fields) => object_schema(fields),
        Shape::Either(a, b) => json!({"anyOf": [shape_schema(a), shape_schema(b)]}),
    }
}

fn object_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        let mut schema = shape_schema(field.shape);
        if let Value::Object(map) = &mut schema {
            let doc = match field.effect {
                Effect::Applies => field.doc.to_owned(),
                Effect::NoEffectOnLinux => format!("{}; no effect on Linux", field.doc),
            };
            map.insert("description".to_owned(), json!(doc));
        }
        properties.insert(field.name.to_owned(), schema);
        if field.presence != Presence::Optional {
            required.push(field.name);
        }
    }
    let mut map = Map::new();
    map.insert("type".to_owned(), json!("object"));
    map.insert("additionalProperties".to_owned(), json!(false));
    map.insert("properties".to_owned(), Value::Object(properties));
    if !required.is_empty() {
        map.insert("required".to_owned(), json!(required));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_schema_is_current() {
        let generated = admin_settings_schema_text();
        if std::env::var_os("STOCKADE_BLESS").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/schema/admin-settings.schema.json"
            );
            std::fs::write(path, &generated).unwrap();
            return;
        }
        assert!(
            ADMIN_SETTINGS_SCHEMA == generated,
            "schema/admin-settings.schema.json is stale: run `STOCKADE_BLESS=1 cargo test -p stockade-policy`"
        );
    }

    /// Each string rule's schema pattern accepts and rejects the same samples as its check.
    #[test]
    fn patterns_agree_with_checks() {
        for (name, rule, good, bad) in crate::checks::tests::samples() {
            let Some(pattern) = rule.pattern else {
                continue;
            };
            let schema = json!({"type": "string", "pattern": pattern});
            let validator = jsonschema::validator_for(&schema).unwrap();
            for sample in good.iter().chain(&bad) {
                let by_check = (rule.check)(sample).is_ok();
                let by_schema = validator.is_valid(&json!(sample));
                assert_eq!(
                    by_check, by_schema,
                    "{name}: {sample:?} check={by_check} schema={by_schema}"
                );
            }
        }
    }

    #[test]
    fn schema_mentions_every_top_level_key() {
        let schema = admin_settings_schema();
        let properties = schema["properties"].as_object().unwrap();
        for field in crate::shape::TOP {
            assert!(properties.contains_key(field.name), "{}", field.name);
        }
        assert_eq!(schema["required"], json!(["configurationFileVersion"]));
    }
}
