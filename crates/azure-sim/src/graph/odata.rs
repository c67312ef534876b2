//! OData query options and paging for Graph collections
//! (learn.microsoft.com/graph/query-parameters, /graph/paging).
//!
//! Pages are deliberately small so clients have to follow
//! `@odata.nextLink`: an absolute URL carrying the request's own options
//! plus an opaque `$skiptoken`, which clients must not parse.

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::{error, Call, JSON};
use crate::http;
use crate::state::SimState;

/// What `$top` means for an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Top {
    /// Not documented for the API: ignored.
    Ignored,
    /// The page size, up to this many.
    PageSize { max: usize },
}

/// How an API pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    /// Items per page when `$top` is absent or ignored.
    pub page: usize,
    pub top: Top,
}

/// The OData options of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListQuery {
    /// Every query pair, to carry into the next link.
    pairs: Vec<(String, String)>,
    pub top: Option<usize>,
    /// Position decoded from `$skiptoken`.
    pub offset: usize,
    /// `$select` properties, in request order.
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
}

/// A query option Graph refuses, as `(code, message)`.
pub(crate) type Refusal = (&'static str, String);

fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("sim-page:{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sim-page:")?
        .parse()
        .ok()
}

impl ListQuery {
    /// Parses the options of `uri`; names are matched case-insensitively,
    /// as Graph does.
    pub fn parse(uri: &Uri) -> Result<Self, Refusal> {
        let pairs = http::query(uri);
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let top = match get("$top") {
            None => None,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err((
                        "BadRequest",
                        format!("Invalid value '{v}' for query option '$top'."),
                    ))
                }
            },
        };
        let offset = match get("$skiptoken") {
            None => 0,
            Some(t) => decode_token(t).ok_or_else(|| {
                (
                    "BadRequest",
                    format!("The $skiptoken value '{t}' is not valid."),
                )
            })?,
        };
        let select = get("$select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        });
        Ok(Self {
            top,
            offset,
            select,
            filter: get("$filter").map(str::to_string),
            pairs,
        })
    }

    /// The next page's URL: this request's options with a new `$skiptoken`.
    fn next_link(&self, origin: &str, path: &str, offset: usize) -> String {
        let mut query: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.push(format!("$skiptoken={}", encode_token(offset)));
        format!("{origin}{path}?{}", query.join("&"))
    }
}

/// Percent-encodes a query component, keeping the `$` of option names
/// readable as real next links do.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace("%24", "$")
        .replace('+', "%20")
}

/// A `$filter` of the one form the sim understands, `{property} eq
/// '{value}'` (property names case-insensitive, `''` an escaped quote), as
/// `(property, value)`.
pub(crate) fn parse_eq(filter: &str) -> Option<(String, String)> {
    let (prop, rest) = filter.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let value = rest
        .strip_prefix("eq")
        .filter(|r| r.starts_with(char::is_whitespace))?
        .trim()
        .strip_prefix('\'')?
        .strip_suffix('\'')?;
    Some((prop.to_string(), value.replace("''", "'")))
}

/// Keeps only the `$select`ed properties (and annotations) of an item.
fn project(item: Value, select: &[String]) -> Value {
    match item {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| {
                    k.starts_with('@') || select.iter().any(|s| s.eq_ignore_ascii_case(k))
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// The Graph 400 for a refused option.
pub(crate) fn refuse(state: &SimState, call: &Call<'_>, (code, message): Refusal) -> Response {
    error(state, &call.ids, StatusCode::BAD_REQUEST, code, &message)
}

/// Answers one page of `items` with `@odata.context` (`…/$metadata#{entity}`,
/// the `$select` list appended) and `@odata.nextLink` when more remain.
pub(crate) fn page(
    state: &SimState,
    call: &Call<'_>,
    uri: &Uri,
    q: &ListQuery,
    entity: &str,
    items: Vec<Value>,
    paging: Paging,
) -> Response {
    let size = match (paging.top, q.top) {
        (Top::PageSize { max }, Some(n)) if n > max => {
            return refuse(
                state,
                call,
                (
                    "BadRequest",
                    format!(
                        "The limit of '{max}' for Top query has been exceeded. The value from the incoming request is '{n}'."
                    ),
                ),
            )
        }
        (Top::PageSize { .. }, Some(n)) => n,
        _ => paging.page,
    }
    .max(1);
    let total = items.len();
    let value: Vec<Value> = items
        .into_iter()
        .skip(q.offset)
        .take(size)
        .map(|v| match &q.select {
            Some(s) => project(v, s),
            None => v,
        })
        .collect();
    let next = q.offset + value.len();
    let context = match &q.select {
        Some(s) => format!(
            "{}/v1.0/$metadata#{entity}({})",
            state.origins.graph,
            s.join(",")
        ),
        None => format!("{}/v1.0/$metadata#{entity}", state.origins.graph),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    if next < total {
        body.insert(
            "@odata.nextLink".into(),
            Value::String(q.next_link(&state.origins.graph, uri.path(), next)),
        );
    }
    body.insert("value".into(), Value::Array(value));
    http::json_with_type(
        StatusCode::OK,
        JSON,
        &Value::Object(body),
        &call.ids.headers(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<ListQuery, Refusal> {
        ListQuery::parse(&s.parse::<Uri>().unwrap())
    }

    #[test]
    fn options_parse_and_tokens_roundtrip() {
        let l = q("/v1.0/x?$top=3&$select=appId,%20keyCredentials&%24filter=appId%20eq%20%27a%27")
            .unwrap();
        assert_eq!(l.top, Some(3));
        assert_eq!(
            l.select,
            Some(vec!["appId".to_string(), "keyCredentials".to_string()])
        );
        assert_eq!(l.filter.as_deref(), Some("appId eq 'a'"));
        assert_eq!(decode_token(&encode_token(17)), Some(17));
        let t = encode_token(4);
        assert_eq!(q(&format!("/v1.0/x?$skiptoken={t}")).unwrap().offset, 4);
        assert!(q("/v1.0/x?$skiptoken=garbage").is_err());
        assert!(q("/v1.0/x?$top=0").is_err());
        assert!(q("/v1.0/x?$top=x").is_err());
    }

    #[test]
    fn next_links_keep_options_and_replace_the_token() {
        let l = q("/v1.0/x?$top=2&$filter=appId%20eq%20%27a%27&$skiptoken=c2ltLXBhZ2U6Mg").unwrap();
        let link = l.next_link("https://g", "/v1.0/x", 4);
        assert_eq!(
            link,
            format!(
                "https://g/v1.0/x?$top=2&$filter=appId%20eq%20%27a%27&$skiptoken={}",
                encode_token(4)
            )
        );
        let back = q(link.trim_start_matches("https://g")).unwrap();
        assert_eq!(back.offset, 4);
        assert_eq!(back.top, Some(2));
    }

    #[test]
    fn eq_filters() {
        assert_eq!(
            parse_eq("appId eq 'abc'"),
            Some(("appId".to_string(), "abc".to_string()))
        );
        assert_eq!(
            parse_eq("  displayName  eq  'O''Brien' "),
            Some(("displayName".to_string(), "O'Brien".to_string()))
        );
        assert_eq!(parse_eq("appId ne 'abc'"), None);
        assert_eq!(parse_eq("startswith(appId,'a')"), None);
        assert_eq!(parse_eq("appId eq abc"), None);
    }

    #[test]
    fn select_keeps_annotations() {
        let v = serde_json::json!({"@odata.type": "#t", "a": 1, "b": 2});
        assert_eq!(
            project(v, &["A".to_string()]),
            serde_json::json!({"@odata.type": "#t", "a": 1})
        );
    }
}
