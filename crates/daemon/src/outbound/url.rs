//! Building request URLs from a configured base.

use url::Url;

/// Joins a path onto a base URL without losing the base's own path.
pub fn join(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_base_path() {
        let u = Url::parse("https://h:1/base/").unwrap();
        assert_eq!(join(&u, "/v1/x"), "https://h:1/base/v1/x");
        let u = Url::parse("https://h:1").unwrap();
        assert_eq!(join(&u, "t/oauth2"), "https://h:1/t/oauth2");
    }
}
