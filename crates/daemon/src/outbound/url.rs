//! Building request URLs from a configured base.
//!
//! Constant paths are joined onto the base ([`join`]); anything that came
//! from outside — a tenant id from discovery, a secret version from Key
//! Vault — only ever goes in as one percent-encoded path segment
//! ([`with_segments`]), so it cannot add path levels, a query or a fragment.

use url::Url;

/// A value that cannot be one path segment of a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} cannot be used in a URL (empty, \".\" or \"..\")")]
pub struct SegmentError {
    /// What the value is, e.g. "tenant id".
    pub what: &'static str,
    /// The value, control characters escaped.
    pub value: String,
}

/// Joins a constant path onto a base URL without losing the base's own path.
pub fn join(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// `base` with each of `segments` appended as one path segment, percent-encoded.
/// Each entry is (what it is, its value); a value the URL standard would not
/// keep as a segment (empty, `.` or `..`, which resolve away) is refused.
pub fn with_segments(base: &Url, segments: &[(&'static str, &str)]) -> Result<Url, SegmentError> {
    let mut url = base.clone();
    {
        let Ok(mut path) = url.path_segments_mut() else {
            // Only URLs like `mailto:` cannot have path segments; bases are https.
            return Err(SegmentError {
                what: "base URL",
                value: base.to_string(),
            });
        };
        path.pop_if_empty();
        for (what, value) in segments {
            if value.is_empty() || *value == "." || *value == ".." {
                return Err(SegmentError {
                    what,
                    value: crate::support::scrub::escape_controls(value).into_owned(),
                });
            }
            path.push(value);
        }
    }
    Ok(url)
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

    #[test]
    fn outside_values_stay_one_segment() {
        let base = Url::parse("https://login.test/").unwrap();
        let url = |v: &str| {
            with_segments(
                &base,
                &[
                    ("tenant id", v),
                    ("", "oauth2"),
                    ("", "v2.0"),
                    ("", "token"),
                ],
            )
            .map(|u| u.to_string())
        };
        assert_eq!(
            url("contoso").unwrap(),
            "https://login.test/contoso/oauth2/v2.0/token"
        );
        assert_eq!(
            url("../11111111-1111-1111-1111-111111111111").unwrap(),
            "https://login.test/..%2F11111111-1111-1111-1111-111111111111/oauth2/v2.0/token"
        );
        assert_eq!(
            url("id/oauth2/v2.0/token?x=").unwrap(),
            "https://login.test/id%2Foauth2%2Fv2.0%2Ftoken%3Fx=/oauth2/v2.0/token"
        );
        assert_eq!(
            url("evil tenant").unwrap(),
            "https://login.test/evil%20tenant/oauth2/v2.0/token"
        );
        for bad in ["", ".", ".."] {
            let e = url(bad).unwrap_err();
            assert_eq!(e.what, "tenant id");
        }
        let base_path = Url::parse("https://vault.test/base/").unwrap();
        assert_eq!(
            with_segments(&base_path, &[("secret", "s"), ("version", "a#b")])
                .unwrap()
                .as_str(),
            "https://vault.test/base/s/a%23b"
        );
    }
}
