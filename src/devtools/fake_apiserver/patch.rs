//! The three patch types of the API server: JSON merge patch (RFC 7386),
//! JSON patch (RFC 6902) and a strategic merge patch that merges lists of
//! objects by their merge key (containers by `name`, volume mounts by
//! `mountPath`, …) and honours the `$patch: delete|replace` directives.
//! Other `$`-directives that kubectl sends (`$setElementOrder/…`,
//! `$retainKeys`, `$deleteFromPrimitiveList/…`) are dropped.

use serde_json::{Map, Value};

/// RFC 7386: objects merge, `null` removes, everything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The merge key of a list field, as the built-in types declare it.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
            Some("name")
        }
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// A strategic merge patch for the built-in types.
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        if let Value::Object(m) = &mut replaced {
            m.retain(|k, _| !k.starts_with('$'));
        }
        *target = replaced;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else { return };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) => {
                let current = target_map.entry(key.clone()).or_insert(Value::Array(Vec::new()));
                match (merge_key(key, items), current) {
                    (Some(mk), Value::Array(existing)) => merge_list(existing, items, mk),
                    (_, current) => *current = Value::Array(items.iter().filter(|i| !is_delete(i)).cloned().collect()),
                }
            }
            Value::Object(_) => strategic(target_map.entry(key.clone()).or_insert(Value::Null), value),
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn is_delete(item: &Value) -> bool {
    item.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn merge_list(existing: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        let wanted = item.get(key);
        let at = wanted.and_then(|w| existing.iter().position(|e| e.get(key) == Some(w)));
        match (is_delete(item), at) {
            (true, Some(i)) => {
                existing.remove(i);
            }
            (true, None) => {}
            (false, Some(i)) => strategic(&mut existing[i], item),
            (false, None) => {
                let mut fresh = Value::Object(Map::new());
                strategic(&mut fresh, item);
                existing.push(fresh);
            }
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| format!("invalid JSON pointer `{pointer}`"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let last = toks.pop().ok_or_else(|| "the whole document cannot be a patch target".to_string())?;
    let mut at = doc;
    for t in toks {
        at = match at {
            Value::Object(m) => m.get_mut(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path `{path}` does not exist"))?;
    }
    Ok((at, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (p, last) = parent(doc, path)?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" { a.len() } else { last.parse::<usize>().map_err(|e| e.to_string())? };
            if i > a.len() {
                return Err(format!("index {i} out of range in `{path}`"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("path `{path}` does not exist")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (p, last) = parent(doc, path)?;
    let gone = match p {
        Value::Object(m) => m.remove(&last),
        Value::Array(a) => last.parse::<usize>().ok().filter(|i| *i < a.len()).map(|i| a.remove(i)),
        _ => None,
    };
    gone.ok_or_else(|| format!("path `{path}` does not exist"))
}

/// RFC 6902 JSON patch; fails as a whole when one operation fails.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or_else(|| "a JSON patch is an array of operations".to_string())?;
    let mut work = doc.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).ok_or("an operation has no `op`")?;
        let path = op.get("path").and_then(Value::as_str).ok_or("an operation has no `path`")?;
        let value = || op.get("value").cloned().ok_or_else(|| format!("`{name}` needs a `value`"));
        let from = || op.get("from").and_then(Value::as_str).ok_or_else(|| format!("`{name}` needs a `from`"));
        match name {
            "add" => add(&mut work, path, value()?)?,
            "remove" => {
                remove(&mut work, path)?;
            }
            "replace" => {
                remove(&mut work, path)?;
                add(&mut work, path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut work, from()?)?;
                add(&mut work, path, moved)?;
            }
            "copy" => {
                let copied = work.pointer(from()?).cloned().ok_or("`from` does not exist")?;
                add(&mut work, path, copied)?;
            }
            "test" => {
                if work.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at `{path}`"));
                }
            }
            other => return Err(format!("unknown operation `{other}`")),
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}
        ]}});
        strategic(
            &mut doc,
            &json!({"$setElementOrder/containers": [], "spec": {"containers": [{"name": "app", "image": "app:2"}]}}),
        );
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "app", "image": "app:2"}, {"name": "sidecar", "image": "side:1"}]}})
        );
        strategic(&mut doc, &json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}));
        assert_eq!(doc, json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}}));
    }

    #[test]
    fn merge_and_json_patch() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
        json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/l/-", "value": 4}, {"op": "replace", "path": "/a/c", "value": 5}]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": {"c": 5, "d": 3}, "l": [3, 4]}));
        assert!(json_patch(&mut doc, &json!([{"op": "test", "path": "/a/c", "value": 1}])).is_err());
        assert_eq!(doc["a"]["c"], 5);
    }
}
