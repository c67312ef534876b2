"""The baseline: what a CSP partner writes today instead of tenantwatch.

A short sequential script in the style of the Secure Application Model
PowerShell samples: read the partner refresh token from Key Vault, list the
Partner Center customers, and for each customer redeem the refresh token for
that tenant's Graph and ARM tokens and call the same endpoints tenantwatch's
collectors call, filling prometheus_client gauges. Run by `benches/run`
against the same simulator as the daemon; prints one JSON line.

Usage: baseline.py --config SIM_WRITTEN_CONFIG --tenants K
"""

import argparse
import json
import os
import resource
import time
import tomllib

import msal
import requests
from prometheus_client import CollectorRegistry, Gauge, generate_latest

GRAPH = "https://graph.microsoft.com/.default"
ARM = "https://management.azure.com/.default"
PARTNER_CENTER = "https://api.partnercenter.microsoft.com/user_impersonation"
VAULT = "https://vault.azure.net/.default"
RG_QUERY_FILE = "src/collector/resource_graph.rs"


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def builtin_query(repo):
    """tenantwatch's built-in Resource Graph query, so the sim answers both alike."""
    src = read(f"{repo}/{RG_QUERY_FILE}")
    start = src.index('pub const BUILTIN_QUERY: &str = "') + len('pub const BUILTIN_QUERY: &str = "')
    body = src[start : src.index('";', start)]
    return "".join(part.strip() + " " for part in body.split("\\\n")).strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--repo", default=".")
    args = ap.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    cloud, partner, kv = cfg["cloud"], cfg["partner"], cfg["store"]["keyvault"]
    ca, login = cloud["ca_file"], cloud["login"]
    # requests lets these override a session's `verify`, which is how msal passes its CA.
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = ca
    http = requests.Session()
    http.verify = ca
    counted = {"n": 0}

    def call(method, url, token, **kw):
        counted["n"] += 1
        r = http.request(method, url, headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})}, timeout=60, **kw)
        r.raise_for_status()
        return r

    def paged(url, token):
        items = []
        while url:
            page = call("GET", url, token).json()
            items += page.get("value", [])
            url = page.get("@odata.nextLink") or page.get("nextLink")
        return items

    started = time.monotonic()
    ident = kv["identity"]
    kv_app = msal.ConfidentialClientApplication(
        ident["client_id"], client_credential=read(ident["client_secret_file"]),
        authority=f"{login}/{ident['tenant_id']}", instance_discovery=False, verify=ca)
    kv_token = kv_app.acquire_token_for_client(scopes=[VAULT])["access_token"]
    refresh_token = call("GET", f"{kv['url']}/secrets/{kv['secret_name']}?api-version=7.4", kv_token).json()["value"]
    secret = read(partner["client_secret_file"])

    def app(tenant):
        return msal.ConfidentialClientApplication(
            partner["client_id"], client_credential=secret, authority=f"{login}/{tenant}",
            instance_discovery=False, verify=ca)

    pc = app(partner["tenant_id"]).acquire_token_by_refresh_token(refresh_token, scopes=[PARTNER_CENTER])["access_token"]
    customers = call("GET", f"{cloud['partner_center']}/v1/customers?size=500", pc).json()["items"][: args.tenants]

    reg = CollectorRegistry()
    g = lambda name, labels: Gauge(name, name, labels, registry=reg)  # noqa: E731
    up, users = g("m365_tenant_up", ["tenant_id"]), g("m365_users", ["tenant_id"])
    lic = g("m365_license_consumed", ["tenant_id", "sku"])
    health = g("m365_service_healthy", ["tenant_id", "service"])
    score = g("m365_secure_score", ["tenant_id"])
    subs = g("azure_subscription_enabled", ["tenant_id", "subscription_id"])
    rg = g("azure_resources", ["tenant_id", "kind", "subscription_id", "type", "location", "state", "category", "impact"])
    query = builtin_query(args.repo)
    token_requests = failed = 0
    for c in customers:
        tid = c["companyProfile"]["tenantId"]
        try:
            a = app(tid)
            graph = a.acquire_token_by_refresh_token(refresh_token, scopes=[GRAPH])["access_token"]
            arm = a.acquire_token_by_refresh_token(refresh_token, scopes=[ARM])["access_token"]
            token_requests += 2
            paged(f"{cloud['graph']}/v1.0/organization", graph)
            users.labels(tid).set(int(call("GET", f"{cloud['graph']}/v1.0/users/$count", graph, headers={"ConsistencyLevel": "eventual"}).text))
            for s in paged(f"{cloud['graph']}/v1.0/subscribedSkus", graph):
                lic.labels(tid, s["skuPartNumber"]).set(s["consumedUnits"])
            for h in paged(f"{cloud['graph']}/v1.0/admin/serviceAnnouncement/healthOverviews", graph):
                health.labels(tid, h["service"]).set(h["status"] == "serviceOperational")
            for s in call("GET", f"{cloud['graph']}/v1.0/security/secureScores?$top=1", graph).json()["value"]:
                score.labels(tid).set(s["currentScore"])
            for s in paged(f"{cloud['arm']}/subscriptions?api-version=2022-12-01", arm):
                subs.labels(tid, s["subscriptionId"]).set(s["state"] == "Enabled")
            options = {"resultFormat": "objectArray", "$top": 1000}
            while True:
                page = call("POST", f"{cloud['arm']}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
                            arm, json={"query": query, "options": options}).json()
                for row in page["data"]:
                    rg.labels(tid, *(str(row.get(k)) for k in ("kind", "subscriptionId", "type", "location", "state", "category", "impact"))).set(row["value"])
                if not page.get("$skipToken"):
                    break
                options = {**options, "$skipToken": page["$skipToken"]}
            up.labels(tid).set(1)
        except Exception:  # noqa: BLE001 - the typical script: one tenant's failure is a 0
            up.labels(tid).set(0)
            failed += 1
    body = generate_latest(reg)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "tenants": len(customers),
        "failed": failed,
        "seconds": time.monotonic() - started,
        "api_requests": counted["n"],
        "token_requests": token_requests,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "metrics_bytes": len(body),
    }))


if __name__ == "__main__":
    main()
