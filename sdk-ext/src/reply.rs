//! The JSON body of local replies; replies are sent with
//! [`HttpCx::send_reply`](crate::HttpCx::send_reply) and
//! [`HttpCx::send_json_error`](crate::HttpCx::send_json_error).

/// The JSON error body used by every filter's local replies:
/// `{"error": <code>, "message": <message>}`.
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
