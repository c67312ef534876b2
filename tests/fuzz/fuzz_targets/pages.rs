//! Paged collections: the same body through every page parser the daemon uses
//! (ARM/Graph `value` + `nextLink`/`@odata.nextLink`, Partner Center customers,
//! Resource Graph query pages).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantwatch_daemon::outbound::request::Page;
use tenantwatch_daemon::collect::collector::resource_graph;
use tenantwatch_daemon::outbound::graph::Organization;
use tenantwatch_daemon::outbound::client::{parse_json, ApiError};
use tenantwatch_daemon::outbound::partner_center;
use tenantwatch_fuzz::{assert_names, response, Response, TENANT};

fn parse<T: serde::de::DeserializeOwned>(api: &'static str, r: &Response) -> Result<T, ApiError> {
    let out = parse_json::<T>(
        api,
        TENANT,
        "https://api.test/page",
        r.status,
        &r.headers,
        r.body,
    );
    if let Err(e) = &out {
        assert_names(&e.to_string(), api);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let r = response(data);
    let _ = parse::<Page<serde_json::Value>>("arm", &r);
    let _ = parse::<Page<Organization>>("graph", &r).map(|p| {
        for o in &p.value {
            let _ = o.default_domain();
        }
    });
    if let Ok(p) = parse::<partner_center::Page>("partner_center", &r) {
        let base = url::Url::parse("https://pc.test").expect("static URL");
        let (_, next) = p.into_parts(&base);
        if let Some(n) = next {
            assert!(n.url.starts_with("https://"), "{}", n.url);
        }
    }
    if let Ok(p) = parse::<resource_graph::Response>("resource_graph", &r) {
        let f = resource_graph::ResourceGraph::new(Vec::new()).builtin_findings(TENANT, p.data);
        assert!(f.samples.iter().all(|s| s.labels[0] == TENANT));
    }
});
