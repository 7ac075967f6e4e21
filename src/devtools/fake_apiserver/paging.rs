//! `limit`/`continue` on lists. A continue token is opaque to clients: hex
//! of `RV/NAMESPACE/NAME`, the first page's resourceVersion and the last
//! item's position. Later pages read the *current* store in (namespace,
//! name) order after that position, not a snapshot at the first page's
//! resourceVersion as the real server does: objects written between pages
//! show up (or not) by name, and no token ever expires with 410.

use super::store::ApiError;
use serde_json::Value;

/// Where an object sits in list order: namespace, then name.
pub(crate) fn position(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    let field = |f: &str| meta.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    (field("namespace"), field("name"))
}

/// The token for the page after `last`.
pub(crate) fn encode(rv: u64, (namespace, name): &(String, String)) -> String {
    format!("{rv}/{namespace}/{name}").bytes().map(|b| format!("{b:02x}")).collect()
}

/// The first page's resourceVersion and the last position served.
pub(crate) fn decode(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid continue token `{token}`"));
    let bytes = token.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(invalid());
    }
    let raw = bytes
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '/');
    let (Some(rv), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let rv = rv.parse().map_err(|_| invalid())?;
    Ok((rv, (namespace.to_string(), name.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_a_bad_request() {
        let position = ("shop".to_string(), "web-1".to_string());
        let token = encode(42, &position);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode(&token).unwrap(), (42, position));
        assert_eq!(decode("zz").unwrap_err().code, 400);
        assert_eq!(decode(&encode(1, &(String::new(), "x".into()))).unwrap().1, (String::new(), "x".into()));
    }
}
