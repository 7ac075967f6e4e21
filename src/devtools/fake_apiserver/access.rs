//! `SelfSubjectAccessReview` and `SelfSubjectRulesReview`, answered from
//! rules the test configures ([`Config::access_rules`](super::Config)).
//! kubectl sends these as protobuf; the server reads just the fields it
//! needs from the wire format and answers JSON, which client-go accepts.

use super::store::ApiError;
use serde_json::{Value, json};

/// What the caller may do: each list matches any entry, and `*` anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
}

impl AccessRule {
    /// A rule from string slices, for tests and examples.
    pub fn new(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self { verbs: owned(verbs), api_groups: owned(api_groups), resources: owned(resources) }
    }

    fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|item| item == "*" || item == want);
        any(&self.verbs, verb) && any(&self.api_groups, group) && any(&self.resources, resource)
    }
}

/// Length-delimited fields (number, bytes) of one protobuf message; other wire types are skipped.
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, &[u8])>, ApiError> {
    fn varint(buf: &mut &[u8]) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buf.split_first().ok_or_else(|| ApiError::bad_request("truncated protobuf"))?;
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ApiError::bad_request("bad protobuf varint"))
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let skip = match tag & 7 {
            0 => {
                varint(&mut buf)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| ApiError::bad_request("bad length"))?;
                let field = buf.get(..len).ok_or_else(|| ApiError::bad_request("truncated protobuf"))?;
                out.push((tag >> 3, field));
                len
            }
            _ => return Err(ApiError::bad_request("unsupported protobuf wire type")),
        };
        buf = buf.get(skip..).ok_or_else(|| ApiError::bad_request("truncated protobuf"))?;
    }
    Ok(out)
}

fn field(buf: &[u8], number: u64) -> Result<&[u8], ApiError> {
    Ok(fields(buf)?.into_iter().find(|(n, _)| *n == number).map_or(&[][..], |(_, b)| b))
}

/// Strings of a message by field number, as a JSON object with `names`.
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Result<Value, ApiError> {
    let mut object = json!({});
    for (number, bytes) in fields(buf)? {
        if let Some((_, name)) = names.iter().find(|(n, _)| *n == number) {
            object[*name] = json!(String::from_utf8_lossy(bytes));
        }
    }
    Ok(object)
}

/// The request body as JSON: protobuf (`k8s\0` + `runtime.Unknown`) is decoded to the `spec`.
pub(crate) fn body_json(body: &[u8], protobuf: bool, rules_review: bool) -> Result<Value, ApiError> {
    if !protobuf {
        return serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")));
    }
    let envelope = body.strip_prefix(b"k8s\0").ok_or_else(|| ApiError::bad_request("not a protobuf envelope"))?;
    let raw = field(envelope, 2)?;
    let spec = field(raw, 2)?;
    if rules_review {
        return Ok(json!({"spec": strings(spec, &[(1, "namespace")])?}));
    }
    let resource = field(spec, 1)?;
    let non_resource = field(spec, 2)?;
    let mut out = json!({"spec": {}});
    if !resource.is_empty() {
        out["spec"]["resourceAttributes"] = strings(
            resource,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        )?;
    }
    if !non_resource.is_empty() {
        out["spec"]["nonResourceAttributes"] = strings(non_resource, &[(1, "path"), (2, "verb")])?;
    }
    Ok(out)
}

/// Answers a review; `rules` `None` allows everything.
///
/// With `partial`, a rules review says it is incomplete and lists no rules,
/// as clusters with webhook or cloud IAM authorisers answer; access reviews
/// still answer from `rules`.
pub(crate) fn review(request: &Value, rules: Option<&[AccessRule]>, rules_review: bool, partial: bool) -> Value {
    let all = [AccessRule::new(&["*"], &["*"], &["*"])];
    let rules = rules.unwrap_or(&all);
    let mut answer = request.clone();
    answer["apiVersion"] = json!("authorization.k8s.io/v1");
    answer["kind"] = json!(if rules_review { "SelfSubjectRulesReview" } else { "SelfSubjectAccessReview" });
    answer["metadata"] = json!({"creationTimestamp": null});
    if rules_review {
        let resource_rules: Vec<Value> = rules
            .iter()
            .map(|r| json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources}))
            .collect();
        answer["status"] = if partial {
            json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true,
                   "evaluationError": "webhook authorizer: rules cannot be listed"})
        } else {
            json!({"resourceRules": resource_rules, "nonResourceRules": [], "incomplete": false})
        };
        return answer;
    }
    let attrs = &request["spec"]["resourceAttributes"];
    let allowed = if attrs.is_object() {
        let text = |k: &str| attrs[k].as_str().unwrap_or("");
        let resource = match text("subresource") {
            "" => text("resource").to_string(),
            sub => format!("{}/{sub}", text("resource")),
        };
        rules.iter().any(|r| r.allows(text("verb"), text("group"), &resource))
    } else {
        // Non-resource URLs: allowed only when everything is.
        rules.iter().any(|r| r.allows("*", "*", "*"))
    };
    let reason = if allowed { "allowed by the fake server's rules" } else { "" };
    answer["status"] = json!({"allowed": allowed, "reason": reason});
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kubectls_protobuf_access_review() {
        // As kubectl 1.32 sends `auth can-i get /healthz`.
        let body = b"k8s\x00\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12/\n\x10\n\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x11\x12\x0f\n\x08/healthz\x12\x03get\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00\"\x00";
        let request = body_json(body, true, false).unwrap();
        assert_eq!(request["spec"]["nonResourceAttributes"], json!({"path": "/healthz", "verb": "get"}));
        let rules = [AccessRule::new(&["get", "list"], &["apps"], &["deployments"])];
        let review_of = |verb: &str| {
            let request =
                json!({"spec": {"resourceAttributes": {"verb": verb, "group": "apps", "resource": "deployments"}}});
            review(&request, Some(&rules), false, false)["status"]["allowed"].clone()
        };
        assert_eq!((review_of("get"), review_of("patch")), (json!(true), json!(false)));
        assert_eq!(review(&request, None, false, false)["status"]["allowed"], true);
    }
}
