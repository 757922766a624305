//! Local replies (`proxy_send_local_response`) with a small JSON body.

use crate::abi;
use crate::host::{check, Status};
use crate::wire::encode_pairs;

/// Sends a local reply that ends the stream. `details` becomes Envoy's response code details
/// (use `snake_case`, no spaces); `headers` are added to the reply.
pub fn send(
    status: u32,
    details: &str,
    body: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<(), Status> {
    let headers = encode_pairs(headers);
    check(unsafe {
        abi::proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Sends a local reply with body `{"error": <code>, "message": <message>}` and
/// `content-type: application/json`, plus `headers`.
pub fn send_json_error(
    status: u32,
    code: &str,
    message: &str,
    headers: &[(&str, &[u8])],
) -> Result<(), Status> {
    let body = json_error_body(code, message);
    let mut all: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 1);
    all.push(("content-type", b"application/json"));
    all.extend_from_slice(headers);
    send(status, code, body.as_bytes(), &all)
}

/// The JSON error body used by every filter's local replies.
pub fn json_error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "error": code, "message": message }).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_error_body_escapes_its_fields() {
        let body = super::json_error_body("bad", "say \"hi\"");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["error"], "bad");
        assert_eq!(parsed["message"], "say \"hi\"");
    }
}
