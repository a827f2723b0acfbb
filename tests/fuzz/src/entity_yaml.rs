//! A descriptor file's bytes as ingestion reads them: UTF-8, YAML documents,
//! validation, the entity's ref and its relations.

use callboard_catalog::entity_ref::DEFAULT_NAMESPACE;
use callboard_catalog::{EntityRef, relations, validation, yaml};
use serde_json::Value;

/// One input: the whole file.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = yaml::parse_documents(text) else {
        return;
    };
    for doc in docs {
        if !validation::validate_entity(&doc.value).is_empty() {
            continue;
        }
        let Some(r) = entity_ref(&doc.value) else {
            continue;
        };
        // A valid entity's ref, written out, reads back as the same entity.
        let back = EntityRef::parse(&r.to_string()).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!(back.key(), r.key(), "{r}");
        let _ = relations::relations_of(&doc.value, &r);
    }
}

/// The ref ingestion gives an entity whose kind and name are usable.
fn entity_ref(v: &Value) -> Option<EntityRef> {
    let kind = v.get("kind")?.as_str()?;
    let name = v.pointer("/metadata/name")?.as_str()?;
    let namespace = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    (validation::is_valid_kind(kind)
        && validation::is_valid_name(name)
        && validation::is_valid_namespace(namespace))
    .then(|| EntityRef::new(kind, namespace, name))
}
