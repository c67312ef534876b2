//! Tests of the Key Vault origin: its error body here, and end to end over
//! HTTPS the challenge, the api-version rules and the secret operations.

use super::KvErrorBody;

#[test]
fn inner_error_has_only_code() {
    let v = KvErrorBody::with_inner("Forbidden", "no", "AccessDenied").to_json();
    assert_eq!(
        v,
        serde_json::json!({"error":{"code":"Forbidden","message":"no","innererror":{"code":"AccessDenied"}}})
    );
    let v = KvErrorBody::new("Unauthorized", "AKV10000: x").to_json();
    assert!(v["error"].get("innererror").is_none());
}
