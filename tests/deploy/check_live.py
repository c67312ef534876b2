#!/usr/bin/env python3
"""The shipped rules and dashboard against a real Prometheus scraping `tenantwatch demo`.

  check_live.py PROMETHEUS_URL DAEMON_URL ALERTS.yml DASHBOARD.json EXPORTED_METRICS.txt

Waits until Prometheus has scraped the daemon and evaluated every rule group, then
fails when
- the tenantwatch target is not up, or a rule has an evaluation error (for example
  a join that turns many-to-many on real series), or Prometheus did not load every
  rule of alerts.yml;
- a dashboard expression (with $instance/$tenant = .* and the interval variables
  set) is rejected by the query API;
- the daemon exports a tenantwatch_* metric missing from exported-metrics.txt.
It prints which dashboard expressions return data against the demo (informational:
the simulated cloud need not feed every collector).
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from check_promql import NAME, exported, template_expr  # noqa: E402

prom, daemon, alerts_path, dash_path, metrics_path = sys.argv[1:6]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def query(expr):
    try:
        return get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}") or {"status": "error", "error": str(e)}


problems = []
expected_rules = sum(len(g["rules"]) for g in yaml.safe_load(Path(alerts_path).read_text())["groups"])

deadline = time.time() + 60
while True:
    try:
        targets = get(f"{prom}/api/v1/targets")["data"]["activeTargets"]
        rules = get(f"{prom}/api/v1/rules")["data"]["groups"]
    except Exception as e:  # Prometheus still starting
        targets, rules = [], []
        err = e
    tw = [t for t in targets if t["labels"].get("job") == "tenantwatch"]
    evaluated = rules and all(g.get("lastEvaluation", "").startswith("2") and not g["lastEvaluation"].startswith("0001") for g in rules)
    if tw and all(t["health"] == "up" for t in tw) and evaluated and query("tenantwatch_tenant_info")["data"]["result"]:
        break
    if time.time() > deadline:
        problems.append(f"timed out waiting for the scrape and rule evaluation: targets={tw} rules evaluated={evaluated}")
        break
    time.sleep(1)
# two more evaluation rounds so the `for:` timers start and joins see full data
time.sleep(3)

rules = get(f"{prom}/api/v1/rules")["data"]["groups"]
loaded = sum(len(g["rules"]) for g in rules)
if loaded != expected_rules:
    problems.append(f"Prometheus loaded {loaded} rules, alerts.yml has {expected_rules}")
for g in rules:
    for r in g["rules"]:
        if r.get("health") != "ok" or r.get("lastError"):
            problems.append(f"rule {r['name']}: health {r.get('health')}: {r.get('lastError')}")
states = {}
for g in rules:
    for r in g["rules"]:
        states[r["name"]] = r.get("state", "?")
active = sorted(n for n, s in states.items() if s in ("pending", "firing"))

# dashboard expressions against real data
dash = json.loads(Path(dash_path).read_text())


def live(expr):
    e = expr
    for var, val in (("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h")):
        e = e.replace(var, val)
    return re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", ".*", e)


exprs = []
for v in dash["templating"]["list"]:
    e = template_expr(v.get("query")) if v.get("type") == "query" else None
    if e:
        exprs.append((f"variable {v['name']}", e))


def walk(ps):
    for p in ps:
        yield p
        yield from walk(p.get("panels", []))


for p in walk(dash["panels"]):
    for t in p.get("targets", []):
        if t.get("expr"):
            exprs.append((f"{p['title']} {t['refId']}", t["expr"]))
with_data, empty = 0, []
for where, e in exprs:
    r = query(live(e))
    if r.get("status") != "success":
        problems.append(f"dashboard {where}: query failed: {r.get('error')}: {live(e)}")
    elif r["data"]["result"]:
        with_data += 1
    else:
        empty.append(where)

# what the daemon really exports vs the contract list
with urllib.request.urlopen(f"{daemon}/metrics", timeout=10) as r:
    text = r.read().decode()
names = set()
for line in text.splitlines():
    m = re.match(r"# TYPE (tenantwatch_[a-zA-Z0-9_]+) ", line)
    if m and not m.group(1).startswith("tenantwatch_azure_query_"):
        names.add(m.group(1))
missing = sorted(names - exported(metrics_path))
for n in missing:
    problems.append(f"the daemon exports {n}, tests/deploy/exported-metrics.txt does not list it")

print(f"prometheus: target up, {loaded} rules loaded, every rule evaluated without error")
print(f"pending/firing against the demo: {', '.join(active) or 'none'}")
print(f"dashboard: {len(exprs)} queries accepted by Prometheus, {with_data} return data from the demo")
if empty:
    print("  no data from the demo (informational): " + "; ".join(empty))
print(f"daemon exports {len(names)} tenantwatch_* metrics, all listed" if not missing else "")
for p in problems:
    print("FAIL", p)
sys.exit(1 if problems else 0)
