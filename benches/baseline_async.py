"""The concurrent baseline: what a partner who wants it fast writes in Python.

asyncio with httpx.AsyncClient (HTTP/1.1, verify = the simulator's CA file
from the config) and msal, at the daemon's concurrency: an asyncio.Semaphore
of `--concurrency` customer tenants in flight, each tenant's requests one
after another, so at most that many API requests are in flight (the daemon's
collection.concurrency = max_requests). The requests are exactly
baseline.py's (the plans in baseline_common.py: Key Vault's secret, the
Partner Center customer list, app_credentials' application in the partner
tenant, and per customer the requests of directory, arm_subscriptions,
resource_graph, licenses, m365_subscriptions, partner_subscriptions,
service_health and secure_score).

msal is synchronous: each customer tenant gets its own
ConfidentialClientApplication (its authority; msal's in-memory token cache
keeps the tenant's tokens), built and called on a ThreadPoolExecutor of
`--concurrency` threads via loop.run_in_executor, so token redemptions run
concurrently without blocking the event loop. All apps share one
requests.Session (msal's http_client) with a connection pool of
`--concurrency`, so thousands of tenants do not mean thousands of sockets.

A 429 sleeps `Retry-After` (holding the tenant's semaphore slot, as the
simple script does) and retries, at most MAX_RETRIES times per request (a Retry-After over MAX_WAIT,
60 s, fails the request); 429s
are counted. Prints one JSON line like baseline.py (tenants, failed, seconds,
api_requests, token_requests, throttled, cpu_seconds, max_rss_kib,
metrics_bytes, plus concurrency).

Usage: baseline_async.py --config SIM_WRITTEN_CONFIG --tenants K --concurrency C [--repo DIR]
"""

import argparse
import asyncio
import json
import os
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import baseline_common as bc
import httpx
import msal
import requests
from prometheus_client import generate_latest


async def drive(plan, send):
    """Runs a request plan to its end, awaiting `send` for each request."""
    try:
        r = plan.send(None)
        while True:
            r = plan.send(await send(r))
    except StopIteration as done:
        return done.value


async def run(args):
    cfg = bc.load_config(args.config)
    cloud, partner, kv = cfg["cloud"], cfg["partner"], cfg["store"]["keyvault"]
    ca, login = cloud["ca_file"], cloud["login"]
    os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = ca  # msal's requests
    stats = {"api": 0, "token": 0, "throttled": 0}
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=args.concurrency)
    http = httpx.AsyncClient(http1=True, http2=False, verify=ssl.create_default_context(cafile=ca), timeout=60,
                             limits=httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency))

    async def send(r):
        for attempt in range(bc.MAX_RETRIES + 1):
            stats["api"] += 1
            resp = await http.request(r.method, r.url, headers={"Authorization": f"Bearer {r.token}", **r.headers},
                                      json=r.body)
            if resp.status_code != 429:
                resp.raise_for_status()
                return resp.text
            stats["throttled"] += 1
            wait = bc.retry_after(resp.headers)
            if not bc.should_retry(attempt, wait):
                break
            await asyncio.sleep(wait)
        raise bc.Throttled(r.url)

    secret = bc.read(partner["client_secret_file"])
    msal_http = requests.Session()
    msal_http.verify = ca
    msal_http.mount("https://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=args.concurrency))

    def app(tenant):
        return msal.ConfidentialClientApplication(
            partner["client_id"], client_credential=secret, authority=f"{login}/{tenant}",
            instance_discovery=False, http_client=msal_http)

    def redeem(a, scope, refresh_token):
        t = a.acquire_token_by_refresh_token(refresh_token, scopes=[scope])
        if "access_token" not in t:
            raise RuntimeError(t.get("error_description") or t.get("error"))
        return t["access_token"]

    async def token(a, scope, refresh_token):
        stats["token"] += 1
        return await loop.run_in_executor(pool, redeem, a, scope, refresh_token)

    started = time.monotonic()
    ident = kv["identity"]

    def kv_token():
        a = msal.ConfidentialClientApplication(
            ident["client_id"], client_credential=bc.read(ident["client_secret_file"]),
            authority=f"{login}/{ident['tenant_id']}", instance_discovery=False, verify=ca)
        return a.acquire_token_for_client(scopes=[bc.VAULT])["access_token"]

    stats["token"] += 1
    kvt = await loop.run_in_executor(pool, kv_token)
    refresh_token = json.loads(await send(bc.req("GET", f"{kv['url']}/secrets/{kv['secret_name']}?api-version=7.4", kvt)))["value"]
    partner_app = await loop.run_in_executor(pool, app, partner["tenant_id"])
    pc = await token(partner_app, bc.PARTNER_CENTER, refresh_token)
    customers = await drive(bc.customers_plan(cloud["partner_center"], pc, args.tenants), send)
    m = bc.Metrics()
    query = bc.builtin_query(args.repo)
    sem = asyncio.Semaphore(args.concurrency)
    partner_failed = False

    async def partner_level():
        nonlocal partner_failed
        async with sem:
            try:
                await drive(bc.partner_plan(cloud, partner["client_id"], await token(partner_app, bc.GRAPH, refresh_token), m), send)
            except Exception:  # noqa: BLE001 - the partner-level collector failing does not stop the script
                partner_failed = True

    async def tenant(tid):
        async with sem:
            try:
                a = await loop.run_in_executor(pool, app, tid)
                graph = await token(a, bc.GRAPH, refresh_token)
                arm = await token(a, bc.ARM, refresh_token)
                await drive(bc.tenant_plan(cloud, tid, graph, arm, pc, query, m), send)
                m.up.labels(tid).set(1)
                return 0
            except Exception:  # noqa: BLE001 - the typical script: one tenant's failure is a 0
                m.up.labels(tid).set(0)
                return 1

    outcomes = await asyncio.gather(partner_level(), *(tenant(t) for t in customers))
    failed = sum(o or 0 for o in outcomes[1:])
    await http.aclose()
    pool.shutdown()
    body = generate_latest(m.reg)
    line = json.loads(bc.result(len(customers), failed, time.monotonic() - started, stats, body, partner_failed))
    line["concurrency"] = args.concurrency
    print(json.dumps(line))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repo", default=".")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
