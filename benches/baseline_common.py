"""What both baselines (baseline.py, baseline_async.py) ask, written once.

The requests are plans: generators that yield a `Req` and are sent back the
answer's body text, so the sequential script (requests) and the asyncio one
(httpx) make exactly the same requests in the same order per tenant; only
the driver (retries on 429, concurrency) differs. The requests match the
daemon's default collectors (cost is off by default, so not here):

  once, partner level
    Key Vault   GET {vault}/secrets/{name}?api-version=7.4         (the refresh token; the daemon reads it at start-up)
    PC          GET /v1/customers?size=500, following links.next   (discovery; MS-ContinuationToken)
    Graph       GET /v1.0/applications?$filter=appId eq '{client}'&$select=...   (app_credentials, partner tenant)
  per customer tenant
    Graph       GET /v1.0/organization, GET /v1.0/users/$count     (directory; ConsistencyLevel: eventual)
    ARM         GET /subscriptions?api-version=2022-12-01          (arm_subscriptions, every nextLink)
    ARM         POST /providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01
                the daemon's BUILTIN_QUERY, every $skipToken page  (resource_graph)
    Graph       GET /v1.0/subscribedSkus                           (licenses)
    Graph       GET /v1.0/directory/subscriptions                  (m365_subscriptions)
    PC          GET /v1/customers/{id}/subscriptions               (partner_subscriptions, partner's PC token)
    Graph       GET /v1.0/admin/serviceAnnouncement/healthOverviews (service_health)
    Graph       GET /v1.0/security/secureScores?$top=1             (secure_score, one page)

Graph lists follow `@odata.nextLink`, ARM `nextLink`, as the daemon's do.
Tokens (msal, by refresh token): Partner Center and Graph for the partner
tenant, Graph and ARM for each customer tenant.
"""

import json
import resource
import tomllib
from collections import namedtuple

from prometheus_client import CollectorRegistry, Gauge

GRAPH = "https://graph.microsoft.com/.default"
ARM = "https://management.azure.com/.default"
PARTNER_CENTER = "https://api.partnercenter.microsoft.com/user_impersonation"
VAULT = "https://vault.azure.net/.default"
# The daemon's built-in Resource Graph query (`pub const BUILTIN_QUERY`), read
# from its source so the simulator answers both alike.
RG_QUERY_FILE = "crates/daemon/src/collect/collector/resource_graph.rs"
RG_API = "2024-04-01"
ARM_SUBSCRIPTIONS_API = "2022-12-01"
PC_PAGE_SIZE = 500  # the daemon's partner_center::PAGE_SIZE
MAX_RETRIES = 5  # per request, on 429 (after sleeping Retry-After)
MAX_WAIT = 60.0  # a 429 asking for longer fails the request (as the daemon's Key Vault client does over 30 s)

Req = namedtuple("Req", "method url token headers body")


def req(method, url, token, headers=None, body=None):
    return Req(method, url, token, headers or {}, body)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def load_config(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def builtin_query(repo):
    """tenantwatch's built-in Resource Graph query, so the sim answers both alike."""
    src = read(f"{repo}/{RG_QUERY_FILE}")
    marker = 'pub const BUILTIN_QUERY: &str = "'
    start = src.index(marker) + len(marker)
    body = src[start : src.index('";', start)]
    return "".join(part.strip() + " " for part in body.split("\\\n")).strip()


def retry_after(headers):
    """Seconds to wait from a 429's Retry-After (whole seconds); 1 when absent or a date."""
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def should_retry(attempt, wait):
    """Retry after a 429: fewer than MAX_RETRIES retries so far and a wait of at most MAX_WAIT."""
    return attempt < MAX_RETRIES and wait <= MAX_WAIT


def paged(url, token, headers=None):
    """A Graph or ARM list: every page's `value`, following nextLink."""
    items = []
    while url:
        page = json.loads((yield req("GET", url, token, headers)))
        items += page.get("value", [])
        url = page.get("@odata.nextLink") or page.get("nextLink")
    return items


def customers_plan(pc_base, token, limit):
    """Partner Center's customer list, following links.next, until `limit` customers."""
    url, cont, out = f"{pc_base}/v1/customers?size={PC_PAGE_SIZE}", None, []
    while url and len(out) < limit:
        headers = {"Accept": "application/json"}
        if cont:
            headers["MS-ContinuationToken"] = cont
        page = json.loads((yield req("GET", url, token, headers)))
        out += [i["companyProfile"]["tenantId"] for i in page.get("items", [])]
        nxt = (page.get("links") or {}).get("next")
        if not nxt:
            break
        uri = nxt["uri"]
        url = uri if uri.startswith("https://") else pc_base + (uri if uri.startswith("/v1/") else "/v1/" + uri.lstrip("/"))
        cont = next((h["value"] for h in nxt.get("headers", []) if h["key"].lower() == "ms-continuationtoken"), None)
    return out[:limit]


class Metrics:
    """The prometheus_client gauges a partner's exporter would fill."""

    def __init__(self):
        self.reg = CollectorRegistry()
        def g(name, labels):
            return Gauge(name, name, labels, registry=self.reg)

        self.up, self.users = g("m365_tenant_up", ["tenant_id"]), g("m365_users", ["tenant_id"])
        self.lic = g("m365_license_consumed", ["tenant_id", "sku"])
        self.m365 = g("m365_subscription_licenses", ["tenant_id", "sku", "status"])
        self.pc = g("partner_subscription_auto_renew", ["tenant_id", "subscription_id", "offer"])
        self.health = g("m365_service_healthy", ["tenant_id", "service"])
        self.score = g("m365_secure_score", ["tenant_id"])
        self.subs = g("azure_subscription_enabled", ["tenant_id", "subscription_id"])
        self.rg = g("azure_resources", ["tenant_id", "kind", "subscription_id", "type", "location", "state", "category", "impact"])
        self.creds = g("app_credential_count", ["app_id", "kind"])


def partner_plan(cloud, client_id, graph_token, m):
    """app_credentials: the SAM app's credentials in the partner tenant."""
    url = (f"{cloud['graph']}/v1.0/applications?$filter=appId%20eq%20'{client_id}'"
           "&$select=appId,passwordCredentials,keyCredentials")
    for a in (yield from paged(url, graph_token)):
        m.creds.labels(a.get("appId", ""), "secret").set(len(a.get("passwordCredentials") or []))
        m.creds.labels(a.get("appId", ""), "certificate").set(len(a.get("keyCredentials") or []))


def tenant_plan(cloud, tid, graph, arm, pc, query, m):
    """Every default collector's requests for one customer tenant."""
    g, a = cloud["graph"], cloud["arm"]
    yield from paged(f"{g}/v1.0/organization", graph)
    m.users.labels(tid).set(int((yield req("GET", f"{g}/v1.0/users/$count", graph, {"ConsistencyLevel": "eventual"}))))
    for s in (yield from paged(f"{a}/subscriptions?api-version={ARM_SUBSCRIPTIONS_API}", arm)):
        m.subs.labels(tid, s.get("subscriptionId", "")).set(s.get("state") == "Enabled")
    options = {"resultFormat": "objectArray", "$top": 1000}
    while True:
        page = json.loads((yield req("POST", f"{a}/providers/Microsoft.ResourceGraph/resources?api-version={RG_API}",
                                     arm, None, {"query": query, "options": options})))
        for row in page.get("data", []):
            m.rg.labels(tid, *(str(row.get(k)) for k in ("kind", "subscriptionId", "type", "location", "state", "category", "impact"))).set(row.get("value", 0))
        if not page.get("$skipToken"):
            break
        options = {**options, "$skipToken": page["$skipToken"]}
    for s in (yield from paged(f"{g}/v1.0/subscribedSkus", graph)):
        m.lic.labels(tid, s.get("skuPartNumber", "")).set(s.get("consumedUnits", 0))
    for s in (yield from paged(f"{g}/v1.0/directory/subscriptions", graph)):
        m.m365.labels(tid, s.get("skuPartNumber", ""), s.get("status", "")).set(s.get("totalLicenses", 0))
    page = json.loads((yield req("GET", f"{cloud['partner_center']}/v1/customers/{tid}/subscriptions", pc, {"Accept": "application/json"})))
    for s in page.get("items", []):
        m.pc.labels(tid, s.get("id", ""), s.get("offerName") or s.get("offerId") or "").set(bool(s.get("autoRenewEnabled")))
    for h in (yield from paged(f"{g}/v1.0/admin/serviceAnnouncement/healthOverviews", graph)):
        m.health.labels(tid, h.get("service", "")).set(h.get("status") == "serviceOperational")
    for s in json.loads((yield req("GET", f"{g}/v1.0/security/secureScores?$top=1", graph))).get("value", []):
        m.score.labels(tid).set(s.get("currentScore", 0))


class Throttled(Exception):
    """A request still got 429 after MAX_RETRIES retries."""


def result(tenants, failed, seconds, stats, body, partner_failed):
    """The JSON line both baselines print."""

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return json.dumps({
        "tenants": tenants,
        "failed": failed,
        "partner_failed": partner_failed,
        "seconds": seconds,
        "api_requests": stats["api"],
        "token_requests": stats["token"],
        "throttled": stats["throttled"],
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "metrics_bytes": len(body),
    })
