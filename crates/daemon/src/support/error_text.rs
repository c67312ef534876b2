//! An error and its causes as one line of text, each cause once.
//!
//! The daemon's own errors put their source in their own text, so a log
//! line with `error = %e` is whole; other libraries' errors do not (reqwest's
//! text is only "error sending request", the reason — connection refused,
//! an unknown certificate, a timeout — is a cause), nor do anyhow's contexts.

/// `e`'s text, then each cause's text that is not already in it.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 429 Too Many Requests")]
    struct Throttled;

    /// As the daemon's errors are: the source in its own text too.
    #[derive(Debug, thiserror::Error)]
    #[error("Key Vault identity: {0}")]
    struct Identity(#[source] Throttled);

    /// As most libraries' errors are: the source left out of the text.
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Send(#[source] std::io::Error);

    #[test]
    fn each_cause_once_and_none_lost() {
        assert_eq!(
            super::chain(&Identity(Throttled)),
            "Key Vault identity: HTTP 429 Too Many Requests"
        );
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(
            super::chain(&Send(refused)),
            "error sending request: Connection refused"
        );
    }
}
