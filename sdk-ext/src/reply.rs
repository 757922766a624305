//! The JSON body of local replies; replies are sent with
//! [`HttpCx::send_reply`](crate::HttpCx::send_reply) and
//! [`HttpCx::send_json_error`](crate::HttpCx::send_json_error).

use crate::text::push_json_string;

/// The JSON error body used by every filter's local replies:
/// `{"error": <code>, "message": <message>}`.
pub fn json_error_body(code: &str, message: &str) -> String {
    // The bytes `json!({...}).to_string()` writes (a `Value` map sorts its keys), without
    // `serde_json::Value`: its map and number code would otherwise be linked for this alone.
    let mut body = String::from("{\"error\":");
    push_json_string(&mut body, code);
    body.push_str(",\"message\":");
    push_json_string(&mut body, message);
    body.push('}');
    body
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_error_body_escapes_its_fields() {
        let body = super::json_error_body("bad", "say \"hi\"");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["error"], "bad");
        assert_eq!(parsed["message"], "say \"hi\"");
        let json = serde_json::json!({ "error": "a\u{1}", "message": "é\n\\" }).to_string();
        assert_eq!(super::json_error_body("a\u{1}", "é\n\\"), json);
    }
}
