//! Evaluates a recognised query over a tenant's Azure estate into a table
//! of typed columns and rows, in a stable order so `$skipToken` paging is
//! deterministic.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::query::{Column, Plan, TypeFilter};
use crate::estate::azure::Resource;
use crate::estate::Azure;

/// A result column: name and Resource Graph type (`string`, `integer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnDef {
    pub name: String,
    pub kind: &'static str,
}

fn col(name: &str, kind: &'static str) -> ColumnDef {
    ColumnDef {
        name: name.to_string(),
        kind,
    }
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub columns: Vec<ColumnDef>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// One row as an `objectArray` object.
    pub fn object(&self, row: &[Value]) -> Value {
        let m: Map<String, Value> = self
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.name.clone(), v.clone()))
            .collect();
        Value::Object(m)
    }

    /// The `table` result format: `{columns:[{name,type}], rows:[[…]]}`.
    pub fn as_table(&self, rows: &[Vec<Value>]) -> Value {
        json!({
            "columns": self.columns.iter().map(|c| json!({"name": c.name, "type": c.kind})).collect::<Vec<_>>(),
            "rows": rows,
        })
    }
}

/// Runs `plan` over the resources whose subscription is in scope.
pub(crate) fn evaluate(plan: &Plan, azure: &Azure, in_scope: &dyn Fn(&str) -> bool) -> Table {
    match plan {
        Plan::Builtin => builtin(azure, in_scope),
        Plan::Count(filter) => Table {
            columns: vec![col("Count", "integer")],
            rows: vec![vec![json!(selected(azure, in_scope, filter).count())]],
        },
        Plan::Summarize { filter, alias, by } => {
            let mut groups: BTreeMap<Vec<String>, u64> = BTreeMap::new();
            for r in selected(azure, in_scope, filter) {
                let key = by.iter().map(|c| cell(r, *c)).collect();
                *groups.entry(key).or_default() += 1;
            }
            let mut columns: Vec<ColumnDef> = by.iter().map(|c| col(c.name(), "string")).collect();
            columns.push(col(alias, "integer"));
            let rows = groups
                .into_iter()
                .map(|(key, n)| {
                    let mut row: Vec<Value> = key.into_iter().map(Value::String).collect();
                    row.push(json!(n));
                    row
                })
                .collect();
            Table { columns, rows }
        }
    }
}

fn selected<'a>(
    azure: &'a Azure,
    in_scope: &'a dyn Fn(&str) -> bool,
    filter: &'a Option<TypeFilter>,
) -> impl Iterator<Item = &'a Resource> {
    azure
        .resources
        .iter()
        .filter(move |r| in_scope(&r.subscription_id))
        .filter(move |r| filter.as_ref().is_none_or(|f| f.matches(r.kind)))
}

fn cell(r: &Resource, c: Column) -> String {
    match c {
        Column::Type => r.kind.to_string(),
        Column::Location => r.location.to_string(),
        Column::SubscriptionId => r.subscription_id.clone(),
        Column::ResourceGroup => r.resource_group.to_string(),
    }
}

/// The built-in query's union: resource counts, then health counts, then
/// Advisor counts; columns a branch lacks are null, as a KQL union gives.
fn builtin(azure: &Azure, in_scope: &dyn Fn(&str) -> bool) -> Table {
    let columns = vec![
        col("subscriptionId", "string"),
        col("type", "string"),
        col("location", "string"),
        col("value", "integer"),
        col("kind", "string"),
        col("state", "string"),
        col("category", "string"),
        col("impact", "string"),
    ];
    let null = Value::Null;
    let mut rows = Vec::new();
    for ((sub, kind, location), n) in azure.resource_counts(in_scope) {
        rows.push(vec![
            json!(sub),
            json!(kind),
            json!(location),
            json!(n),
            json!("resources"),
            null.clone(),
            null.clone(),
            null.clone(),
        ]);
    }
    for ((sub, kind, location, state), n) in azure.health_counts(in_scope) {
        rows.push(vec![
            json!(sub),
            json!(kind),
            json!(location),
            json!(n),
            json!("health"),
            json!(state),
            null.clone(),
            null.clone(),
        ]);
    }
    for ((category, impact), n) in azure.advisor_counts(in_scope) {
        rows.push(vec![
            null.clone(),
            null.clone(),
            null.clone(),
            json!(n),
            json!("advisor"),
            null.clone(),
            json!(category),
            json!(impact),
        ]);
    }
    Table { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::*;
    use crate::world::World;

    fn estate() -> (World, Azure) {
        let w = World::generate(9, 10);
        let t = w
            .customers
            .iter()
            .find(|t| t.subscriptions.len() >= 2)
            .unwrap()
            .clone();
        let a = Azure::generate(9, &t);
        (w, a)
    }

    #[test]
    fn builtin_rows_have_every_union_column() {
        let (_, a) = estate();
        let t = evaluate(&Plan::Builtin, &a, &|_| true);
        assert_eq!(t.rows.len(), a.builtin_rows());
        let kinds: Vec<&str> = t.rows.iter().map(|r| r[4].as_str().unwrap()).collect();
        let first_health = kinds.iter().position(|k| *k == "health").unwrap();
        let first_advisor = kinds.iter().position(|k| *k == "advisor").unwrap();
        assert!(kinds[..first_health].iter().all(|k| *k == "resources"));
        assert!(first_health < first_advisor);
        let o = t.object(&t.rows[first_advisor]);
        assert_eq!(o["subscriptionId"], Value::Null);
        assert!(o["category"].is_string() && o["value"].is_u64());
    }

    #[test]
    fn count_and_summarize_agree_with_the_resources() {
        let (_, a) = estate();
        let all = |_: &str| true;
        let count = evaluate(&parse("resources | count").unwrap(), &a, &all);
        assert_eq!(count.rows, vec![vec![json!(a.resources.len())]]);
        let by_rg = evaluate(
            &parse("resources | summarize n = count() by resourceGroup").unwrap(),
            &a,
            &all,
        );
        let sum: u64 = by_rg.rows.iter().map(|r| r[1].as_u64().unwrap()).sum();
        assert_eq!(sum as usize, a.resources.len());
        assert_eq!(by_rg.columns[1].name, "n");
        let kind = a.resources[0].kind;
        let vms = evaluate(
            &parse(&format!(
                "resources | where type =~ '{}' | count",
                kind.to_ascii_uppercase()
            ))
            .unwrap(),
            &a,
            &all,
        );
        let want = a.resources.iter().filter(|r| r.kind == kind).count();
        assert_eq!(vms.rows[0][0], json!(want));
        let exact = evaluate(
            &parse(&format!(
                "resources | where type == '{}' | count",
                kind.to_ascii_uppercase()
            ))
            .unwrap(),
            &a,
            &all,
        );
        assert_eq!(exact.rows[0][0], json!(0), "== is case-sensitive");
    }
}
