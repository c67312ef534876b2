//! Integration tests: the real `tenantwatch` binary against the simulated cloud,
//! checked the way an operator would check it. One test binary, as zero-to-production does.

mod alerting;
mod broker;
mod cae;
mod check;
mod cli_config;
mod collectors;
mod consent_push;
mod cost;
mod daemon;
mod demo;
mod gdap_access;
mod helpers;
mod hostile;
mod hostile_cloud;
mod lifecycle;
mod mfa;
mod partners;
mod renewals;
mod restart;
mod rotation;
mod service;
mod slow_clients;
mod soak;
mod status_page;
mod tenant_groups;
mod throttling;
mod web;
