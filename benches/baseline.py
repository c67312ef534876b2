"""The sequential baseline: what a CSP partner writes today instead of tenantwatch.

A short sequential script in the style of the Secure Application Model
PowerShell samples, with msal, requests and prometheus_client: read the
partner refresh token from Key Vault, list the Partner Center customers, and
for each customer redeem the refresh token for that tenant's Graph and ARM
tokens (one msal ConfidentialClientApplication per tenant authority) and make
the requests of the daemon's default collectors, one after another, filling
prometheus_client gauges. Run by `benches/run` against the same simulator as
the daemon; prints one JSON line (tenants, failed, seconds, api_requests,
token_requests, throttled, cpu_seconds, max_rss_kib, metrics_bytes).

Requests (the plans in baseline_common.py, shared with baseline_async.py):
once, Key Vault's secret, the Partner Center customer list (paged) and the
partner tenant's SAM application (app_credentials); per customer tenant,
Graph organization and users/$count (directory), ARM subscriptions
(arm_subscriptions), the built-in Resource Graph query with every
$skipToken page (resource_graph), Graph subscribedSkus (licenses) and
directory/subscriptions (m365_subscriptions), Partner Center
customers/{id}/subscriptions (partner_subscriptions), Graph service health
overviews (service_health) and secureScores?$top=1 (secure_score).

A 429 is what a real script meets with the simulator's limits on: it sleeps
`Retry-After` and retries, at most MAX_RETRIES times per request (a Retry-After over MAX_WAIT,
60 s, fails the request); every 429 is
counted (`throttled`), and each try is an API request. A tenant with any
failed request is a 0 in `up` and counts in `failed`.

Usage: baseline.py --config SIM_WRITTEN_CONFIG --tenants K [--repo DIR]
"""

import argparse
import json
import os
import time

import baseline_common as bc
import msal
import requests
from prometheus_client import generate_latest


def drive(plan, send):
    """Runs a request plan to its end with `send`; returns the plan's value."""
    try:
        r = plan.send(None)
        while True:
            r = plan.send(send(r))
    except StopIteration as done:
        return done.value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--repo", default=".")
    args = ap.parse_args()
    cfg = bc.load_config(args.config)
    cloud, partner, kv = cfg["cloud"], cfg["partner"], cfg["store"]["keyvault"]
    ca, login = cloud["ca_file"], cloud["login"]
    # requests lets these override a session's `verify`, which is how msal passes its CA.
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = ca
    http = requests.Session()
    http.verify = ca
    stats = {"api": 0, "token": 0, "throttled": 0}

    def send(r):
        for attempt in range(bc.MAX_RETRIES + 1):
            stats["api"] += 1
            resp = http.request(r.method, r.url, headers={"Authorization": f"Bearer {r.token}", **r.headers},
                                json=r.body, timeout=60)
            if resp.status_code != 429:
                resp.raise_for_status()
                return resp.text
            stats["throttled"] += 1
            wait = bc.retry_after(resp.headers)
            if not bc.should_retry(attempt, wait):
                break
            time.sleep(wait)
        raise bc.Throttled(r.url)

    def token(app, scope, refresh_token):
        stats["token"] += 1
        t = app.acquire_token_by_refresh_token(refresh_token, scopes=[scope])
        if "access_token" not in t:
            raise RuntimeError(t.get("error_description") or t.get("error"))
        return t["access_token"]

    started = time.monotonic()
    ident = kv["identity"]
    kv_app = msal.ConfidentialClientApplication(
        ident["client_id"], client_credential=bc.read(ident["client_secret_file"]),
        authority=f"{login}/{ident['tenant_id']}", instance_discovery=False, verify=ca)
    stats["token"] += 1
    kv_token = kv_app.acquire_token_for_client(scopes=[bc.VAULT])["access_token"]
    refresh_token = json.loads(send(bc.req("GET", f"{kv['url']}/secrets/{kv['secret_name']}?api-version=7.4", kv_token)))["value"]
    secret = bc.read(partner["client_secret_file"])

    def app(tenant):
        return msal.ConfidentialClientApplication(
            partner["client_id"], client_credential=secret, authority=f"{login}/{tenant}",
            instance_discovery=False, verify=ca)

    partner_app = app(partner["tenant_id"])
    pc = token(partner_app, bc.PARTNER_CENTER, refresh_token)
    customers = drive(bc.customers_plan(cloud["partner_center"], pc, args.tenants), send)
    m = bc.Metrics()
    failed, partner_failed = 0, False
    try:
        drive(bc.partner_plan(cloud, partner["client_id"], token(partner_app, bc.GRAPH, refresh_token), m), send)
    except Exception:  # noqa: BLE001 - the partner-level collector failing does not stop the script
        partner_failed = True
    query = bc.builtin_query(args.repo)
    for tid in customers:
        try:
            a = app(tid)
            graph, arm = token(a, bc.GRAPH, refresh_token), token(a, bc.ARM, refresh_token)
            drive(bc.tenant_plan(cloud, tid, graph, arm, pc, query, m), send)
            m.up.labels(tid).set(1)
        except Exception:  # noqa: BLE001 - the typical script: one tenant's failure is a 0
            m.up.labels(tid).set(0)
            failed += 1
    body = generate_latest(m.reg)
    print(bc.result(len(customers), failed, time.monotonic() - started, stats, body, partner_failed))


if __name__ == "__main__":
    main()
