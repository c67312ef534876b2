//! A gauge sample as collectors produce it and the exposition stores and writes it.

use std::sync::Arc;

/// A gauge family a collector exports. Built-in ones are statics; custom Resource
/// Graph queries make theirs from config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Metric name.
    pub name: String,
    /// HELP text.
    pub help: String,
    /// Label names, in order; `tenant_id` first when the family is per tenant.
    pub labels: Vec<String>,
}

impl Family {
    /// A family from static strings.
    pub fn new(name: &str, help: &str, labels: &[&str]) -> Arc<Family> {
        Arc::new(Family {
            name: name.to_string(),
            help: help.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        })
    }
}

/// One gauge value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its family.
    pub family: Arc<Family>,
    /// Label values in the family's order.
    pub labels: Vec<String>,
    /// The value.
    pub value: f64,
}
