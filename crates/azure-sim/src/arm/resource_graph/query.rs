//! The queries the simulated Resource Graph understands. It does not
//! implement KQL: it recognises tenantwatch's built-in query verbatim
//! (whitespace aside) and a small documented subset for custom queries:
//!
//! ```text
//! resources [| where type =~ '<type>'] | summarize [<alias> =] count() by <col>[, <col>…]
//! resources [| where type =~ '<type>'] | count
//! ```
//!
//! with `<col>` among `type`, `location`, `subscriptionId`, `resourceGroup`
//! (`==` compares case-sensitively, as KQL does). Anything else is refused
//! with the position of the first token the sim cannot handle.

/// tenantwatch's built-in query (collector/resource_graph.rs).
pub(crate) const BUILTIN: &str = "resources \
| summarize value = count() by subscriptionId, type = tolower(type), location \
| extend kind = 'resources' \
| union (healthresources \
| where type =~ 'microsoft.resourcehealth/availabilitystatuses' \
| extend state = tostring(properties.availabilityState), resourceType = tolower(tostring(properties.targetResourceType)) \
| summarize value = count() by subscriptionId, type = resourceType, location, state \
| extend kind = 'health') \
| union (advisorresources \
| where type =~ 'microsoft.advisor/recommendations' \
| summarize value = count() by category = tostring(properties.category), impact = tostring(properties.impact) \
| extend kind = 'advisor')";

/// A column of the `resources` table a custom query may group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Type,
    Location,
    SubscriptionId,
    ResourceGroup,
}

impl Column {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "type" => Some(Column::Type),
            "location" => Some(Column::Location),
            "subscriptionId" => Some(Column::SubscriptionId),
            "resourceGroup" => Some(Column::ResourceGroup),
            _ => None,
        }
    }

    /// The column's name in results.
    pub fn name(self) -> &'static str {
        match self {
            Column::Type => "type",
            Column::Location => "location",
            Column::SubscriptionId => "subscriptionId",
            Column::ResourceGroup => "resourceGroup",
        }
    }
}

/// `where type =~ '…'` (case-insensitive) or `where type == '…'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeFilter {
    pub value: String,
    pub case_sensitive: bool,
}

impl TypeFilter {
    /// Whether a resource type passes.
    pub fn matches(&self, kind: &str) -> bool {
        if self.case_sensitive {
            kind == self.value
        } else {
            kind.eq_ignore_ascii_case(&self.value)
        }
    }
}

/// What a recognised query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// tenantwatch's built-in three-part summary.
    Builtin,
    /// `resources [| where …] | count` → one row `{Count: n}`.
    Count(Option<TypeFilter>),
    /// `resources [| where …] | summarize alias = count() by cols`.
    Summarize {
        filter: Option<TypeFilter>,
        alias: String,
        by: Vec<Column>,
    },
}

/// Where a query stopped making sense to the sim, for Resource Graph's
/// `ParserFailure` detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    /// 1-based line.
    pub line: usize,
    /// 0-based character position in that line.
    pub position: usize,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Ident(String),
    Str(String),
    Op(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    line: usize,
    position: usize,
}

impl Token {
    fn error(&self) -> QueryError {
        QueryError {
            line: self.line,
            position: self.position,
            token: self.text.clone(),
        }
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(&self.kind, Kind::Ident(s) if s == name)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.kind, Kind::Op(o) if *o == op)
    }
}

const OPS: &[&str] = &["=~", "==", "|", "=", "(", ")", ","];

fn lex(q: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let position = i - line_start;
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token {
                kind: Kind::Ident(text.clone()),
                text,
                line,
                position,
            });
        } else if c == '\'' || c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i == chars.len() {
                return Err(QueryError {
                    line,
                    position,
                    token: chars[start..].iter().collect(),
                });
            }
            i += 1;
            let text: String = chars[start..i].iter().collect();
            out.push(Token {
                kind: Kind::Str(text[1..text.len() - 1].to_string()),
                text,
                line,
                position,
            });
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
                return Err(QueryError {
                    line,
                    position,
                    token: c.to_string(),
                });
            };
            i += op.chars().count();
            out.push(Token {
                kind: Kind::Op(op),
                text: op.to_string(),
                line,
                position,
            });
        }
    }
    Ok(out)
}

/// Whether `q` is the built-in query, whitespace aside.
fn is_builtin(q: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squash(q) == squash(BUILTIN)
}

/// Recognises a query.
pub(crate) fn parse(q: &str) -> Result<Plan, QueryError> {
    if is_builtin(q) {
        return Ok(Plan::Builtin);
    }
    let tokens = lex(q)?;
    let Some(last) = tokens.last().cloned() else {
        return Err(QueryError {
            line: 1,
            position: 0,
            token: String::new(),
        });
    };
    let mut stages = tokens.split(|t| t.is_op("|"));
    let table = stages.next().unwrap_or_default();
    match table {
        [t] if matches!(&t.kind, Kind::Ident(s) if s.eq_ignore_ascii_case("resources")) => {}
        [t, ..] => return Err(t.error()),
        [] => return Err(last.error()),
    }
    let mut filter = None;
    let mut plan = None;
    for stage in stages {
        let Some(first) = stage.first() else {
            return Err(last.error());
        };
        if plan.is_some() {
            // Nothing may follow the final summarize/count.
            return Err(first.error());
        }
        if first.is_ident("where") && filter.is_none() {
            filter = Some(where_type(stage)?);
        } else if first.is_ident("count") && stage.len() == 1 {
            plan = Some(Plan::Count(filter.take()));
        } else if first.is_ident("summarize") {
            let (alias, by) = summarize(stage, &last)?;
            plan = Some(Plan::Summarize {
                filter: filter.take(),
                alias,
                by,
            });
        } else {
            return Err(first.error());
        }
    }
    plan.ok_or_else(|| last.error())
}

/// `where type =~ '<type>'` or `where type == '<type>'`.
fn where_type(stage: &[Token]) -> Result<TypeFilter, QueryError> {
    match stage {
        [_, col, op, value] if col.is_ident("type") && (op.is_op("=~") || op.is_op("==")) => {
            match &value.kind {
                Kind::Str(v) => Ok(TypeFilter {
                    value: v.clone(),
                    case_sensitive: op.is_op("=="),
                }),
                _ => Err(value.error()),
            }
        }
        [_, col, ..] if !col.is_ident("type") => Err(col.error()),
        [_, _, op, ..] if !(op.is_op("=~") || op.is_op("==")) => Err(op.error()),
        [.., t] => Err(t.error()),
        [] => unreachable_stage(),
    }
}

/// Stages always have a first token; this only satisfies the match.
fn unreachable_stage<T>() -> Result<T, QueryError> {
    Err(QueryError {
        line: 1,
        position: 0,
        token: String::new(),
    })
}

/// `summarize [alias =] count() by col[, col…]`.
fn summarize(stage: &[Token], last: &Token) -> Result<(String, Vec<Column>), QueryError> {
    let mut rest = &stage[1..];
    let mut alias = "count_".to_string();
    if let [name, eq, ..] = rest {
        if eq.is_op("=") {
            match &name.kind {
                Kind::Ident(a) if Column::parse(a).is_none() => alias = a.clone(),
                _ => return Err(name.error()),
            }
            rest = &rest[2..];
        }
    }
    let expect = |rest: &[Token], ok: &dyn Fn(&Token) -> bool| -> Result<(), QueryError> {
        match rest.first() {
            Some(t) if ok(t) => Ok(()),
            Some(t) => Err(t.error()),
            None => Err(last.error()),
        }
    };
    expect(rest, &|t| t.is_ident("count"))?;
    expect(&rest[1..], &|t| t.is_op("("))?;
    expect(&rest[2..], &|t| t.is_op(")"))?;
    expect(&rest[3..], &|t| t.is_ident("by"))?;
    let mut by = Vec::new();
    for (k, t) in rest[4..].iter().enumerate() {
        let want_column = k % 2 == 0;
        match (&t.kind, want_column) {
            (Kind::Ident(name), true) => match Column::parse(name) {
                Some(c) if !by.contains(&c) => by.push(c),
                _ => return Err(t.error()),
            },
            (Kind::Op(","), false) => {}
            _ => return Err(t.error()),
        }
    }
    // `by` needs a column, and a trailing comma needs one after it.
    if by.is_empty() || rest[4..].len() % 2 == 0 {
        return Err(last.error());
    }
    Ok((alias, by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_whatever_the_whitespace() {
        // That it is the daemon's query is checked where both crates meet:
        // tests/it/collectors.rs compares every reported count with ground truth.
        assert_eq!(parse(BUILTIN), Ok(Plan::Builtin));
        let spaced = BUILTIN.replace(" | ", "\n|   ");
        assert_eq!(parse(&spaced), Ok(Plan::Builtin));
        assert_ne!(
            parse(&BUILTIN.replace("'health'", "'x'")),
            Ok(Plan::Builtin)
        );
    }

    #[test]
    fn the_documented_subset() {
        assert_eq!(parse("resources | count"), Ok(Plan::Count(None)));
        assert_eq!(
            parse("Resources\n| where type =~ 'Microsoft.Compute/virtualMachines'\n| summarize n = count() by location, subscriptionId"),
            Ok(Plan::Summarize {
                filter: Some(TypeFilter {
                    value: "Microsoft.Compute/virtualMachines".into(),
                    case_sensitive: false
                }),
                alias: "n".into(),
                by: vec![Column::Location, Column::SubscriptionId],
            })
        );
        assert_eq!(
            parse("resources|summarize count() by resourceGroup"),
            Ok(Plan::Summarize {
                filter: None,
                alias: "count_".into(),
                by: vec![Column::ResourceGroup],
            })
        );
        assert_eq!(
            parse("resources | where type == \"x\" | count"),
            Ok(Plan::Count(Some(TypeFilter {
                value: "x".into(),
                case_sensitive: true
            })))
        );
    }

    #[test]
    fn everything_else_is_refused_at_the_right_token() {
        let e = parse("resources | project id, name").unwrap_err();
        assert_eq!((e.line, e.position, e.token.as_str()), (1, 12, "project"));
        let e = parse("resources\n| where name == 'x' | count").unwrap_err();
        assert_eq!((e.line, e.position, e.token.as_str()), (2, 8, "name"));
        let e = parse("securityresources | count").unwrap_err();
        assert_eq!(e.token, "securityresources");
        assert!(parse("resources | summarize n = count() by name").is_err());
        assert!(parse("resources | summarize n = count() by type,").is_err());
        assert!(parse("resources | summarize n = count() by type, type").is_err());
        assert!(parse("resources | summarize n = count()").is_err());
        assert!(parse("resources | count | count").is_err());
        assert!(parse("resources").is_err());
        assert!(parse("resources | where type =~ 'x").is_err());
        assert!(parse("resources | where type =~ 'x' | where type =~ 'y' | count").is_err());
        assert!(parse("").is_err());
        assert!(parse("resources ; count").is_err());
    }
}
