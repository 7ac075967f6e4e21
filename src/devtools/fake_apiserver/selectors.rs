//! Label selectors (equality- and set-based: `a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x,y)`, `a`, `!a`) and field selectors
//! (`metadata.name=web`, `status.phase!=Running`), as the list and watch
//! query parameters `labelSelector` and `fieldSelector` carry them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    fields: bool,
}

/// Splits on commas outside parentheses.
fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

fn set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set, found `{text}`"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(key.trim().to_string(), value.trim().to_string()));
    }
    if let Some((key, value)) = term.split_once("==") {
        return Ok(Requirement::Equals(key.trim().to_string(), value.trim().to_string()));
    }
    if let Some((key, value)) = term.split_once('=') {
        return Ok(Requirement::Equals(key.trim().to_string(), value.trim().to_string()));
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_string()));
    }
    if let Some((key, rest)) = term.split_once(" notin ") {
        return Ok(Requirement::NotIn(key.trim().to_string(), set(rest)?));
    }
    if let Some((key, rest)) = term.split_once(" in ") {
        return Ok(Requirement::In(key.trim().to_string(), set(rest)?));
    }
    if term.contains(char::is_whitespace) || term.contains('(') {
        return Err(format!("unable to parse requirement `{term}`"));
    }
    Ok(Requirement::Exists(term.to_string()))
}

impl Selector {
    /// Parses a `labelSelector`.
    pub fn labels(text: &str) -> Result<Self, String> {
        let requirements = terms(text).iter().map(|t| parse_term(t)).collect::<Result<_, _>>()?;
        Ok(Self { requirements, fields: false })
    }

    /// Parses a `fieldSelector`: only `=`, `==` and `!=` are allowed.
    pub fn fields(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in terms(text) {
            match parse_term(&term)? {
                r @ (Requirement::Equals(..) | Requirement::NotEquals(..)) => requirements.push(r),
                _ => return Err(format!("invalid field selector `{term}`: only =, == and != are supported")),
            }
        }
        Ok(Self { requirements, fields: true })
    }

    /// Whether `object` satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let lookup =
                |key: &str| -> Option<String> { if self.fields { field(object, key) } else { label(object, key) } };
            match r {
                Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
                Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
                Requirement::In(k, vs) => lookup(k).is_some_and(|have| vs.contains(&have)),
                Requirement::NotIn(k, vs) => lookup(k).is_none_or(|have| !vs.contains(&have)),
                Requirement::Exists(k) => lookup(k).is_some(),
                Requirement::NotExists(k) => lookup(k).is_none(),
            }
        })
    }
}

fn label(object: &Value, key: &str) -> Option<String> {
    object.pointer("/metadata/labels")?.get(key)?.as_str().map(str::to_string)
}

/// A dotted path into the object; a missing field reads as the empty string,
/// as the real server's field sets do for the fields they support.
fn field(object: &Value, path: &str) -> Option<String> {
    let mut at = object;
    for part in path.split('.') {
        match at.get(part) {
            Some(next) => at = next,
            None => return Some(String::new()),
        }
    }
    Some(match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let obj = json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}}});
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("app", true),
            ("!app", false),
            ("missing notin (x)", true),
        ] {
            assert_eq!(Selector::labels(sel).unwrap().matches(&obj), want, "{sel}");
        }
        assert!(Selector::fields("metadata.name=web").unwrap().matches(&obj));
        assert!(Selector::fields("metadata.name!=web").is_ok_and(|s| !s.matches(&obj)));
        assert!(Selector::fields("metadata.name in (web)").is_err());
    }
}
