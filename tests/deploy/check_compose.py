#!/usr/bin/env python3
"""Checks deploy/compose/ without a container engine.

  check_compose.py REPO_ROOT COMPOSE_SPEC_JSON OUTDIR

- every YAML file parses; compose.yaml validates against the Compose
  specification's JSON schema (the one the docker-compose package ships);
- the four services are there, tenantwatch runs hardened (read-only root,
  non-root user, all capabilities dropped, /tmp a tmpfs) and listens on 0.0.0.0;
- every relative bind-mount source exists, and the shipped rules and dashboard are
  what Prometheus and Grafana mount;
- Prometheus scrapes job "tenantwatch" and loads the rules directory the alerts are
  mounted in; Grafana's provisioning points at the mounted dashboard and the
  Prometheus service;
- writes OUTDIR/prometheus.yml (the compose prometheus.yml with the rule path
  pointing at the repo's alerts.yml) for `promtool check config`.
"""
import json
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml

root = Path(sys.argv[1]).resolve()
schema = json.loads(Path(sys.argv[2]).read_text())
outdir = Path(sys.argv[3])
cdir = root / "deploy" / "compose"
problems = []


def fail(msg):
    problems.append(msg)


docs = {}
for f in sorted(cdir.rglob("*.y*ml")):
    try:
        docs[f.relative_to(cdir).as_posix()] = yaml.safe_load(f.read_text())
    except yaml.YAMLError as e:
        fail(f"{f.relative_to(root)}: {e}")

compose = docs.get("compose.yaml")
if compose is None:
    fail("deploy/compose/compose.yaml missing")
    compose = {}
# The schema shipped with docker-compose 1.29 predates the top-level `name` key
# (project name, Compose spec 2022): check that one here and validate the rest.
import re  # noqa: E402

if "name" in compose and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(compose["name"])):
    fail(f"compose.yaml: project name {compose['name']!r} is not lowercase letters, digits, - and _")
for err in jsonschema.Draft7Validator(schema).iter_errors({k: v for k, v in compose.items() if k != "name"}):
    fail(f"compose.yaml: {'/'.join(map(str, err.absolute_path))}: {err.message}")

services = compose.get("services", {})
for name in ("tenantwatch", "prometheus", "alertmanager", "grafana"):
    if name not in services:
        fail(f"compose.yaml: no {name} service")

mounts = {}  # container path -> host path, per service
for name, svc in services.items():
    for v in svc.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith((".", "/")):
            host = (cdir / src).resolve()
            if not host.exists():
                fail(f"compose.yaml: {name} mounts {src}, which does not exist")
            mounts[(name, dst)] = host
        elif src not in compose.get("volumes", {}):
            fail(f"compose.yaml: {name} uses undeclared volume {src}")

tw = services.get("tenantwatch", {})
if tw.get("read_only") is not True:
    fail("tenantwatch: read_only is not true")
if str(tw.get("user", "")).split(":")[0] in ("", "0", "root"):
    fail("tenantwatch: runs as root")
if tw.get("cap_drop") != ["ALL"]:
    fail("tenantwatch: cap_drop is not [ALL]")
if not any(str(t).startswith("/tmp") for t in tw.get("tmpfs", [])):
    fail("tenantwatch: /tmp is not a tmpfs (demo/sim write their CA there)")
if tw.get("environment", {}).get("TENANTWATCH__SERVER__LISTEN") != "0.0.0.0:9464":
    fail("tenantwatch: TENANTWATCH__SERVER__LISTEN is not 0.0.0.0:9464")
hc = tw.get("healthcheck", {}).get("test", [])
if hc[:3] != ["CMD", "/tenantwatch", "healthcheck"]:
    fail(f"tenantwatch: healthcheck is {hc}, want the binary's own probe [CMD, /tenantwatch, healthcheck, ...]")
cred_dir = tw.get("environment", {}).get("CREDENTIALS_DIRECTORY")
if ("tenantwatch", cred_dir) not in mounts:
    fail("tenantwatch: CREDENTIALS_DIRECTORY is not a mounted directory")
cfg_dir = mounts.get(("tenantwatch", "/etc/tenantwatch"))
if cfg_dir is None or not (cfg_dir / "tenantwatch.toml").exists():
    fail("tenantwatch: no tenantwatch.toml mounted at /etc/tenantwatch")
else:
    cfg = tomllib.loads((cfg_dir / "tenantwatch.toml").read_text())
    if cfg.get("server", {}).get("listen") != "0.0.0.0:9464":
        fail("config/tenantwatch.toml: server.listen is not 0.0.0.0:9464")

alerts = root / "deploy" / "prometheus" / "alerts.yml"
prom_rules = [dst for (svc, dst), host in mounts.items() if svc == "prometheus" and host == alerts]
if not prom_rules:
    fail("prometheus does not mount deploy/prometheus/alerts.yml")
prom = docs.get("prometheus.yml", {})
jobs = [j["job_name"] for j in prom.get("scrape_configs", [])]
if "tenantwatch" not in jobs:
    fail("prometheus.yml: no job_name tenantwatch (the alert rules expect it)")
else:
    targets = [t for j in prom["scrape_configs"] if j["job_name"] == "tenantwatch"
               for sc in j.get("static_configs", []) for t in sc["targets"]]
    if "tenantwatch:9464" not in targets:
        fail("prometheus.yml: the tenantwatch job does not scrape tenantwatch:9464")
import fnmatch  # noqa: E402

for r in prom_rules:
    if not any(fnmatch.fnmatch(r, pat) for pat in prom.get("rule_files", [])):
        fail(f"prometheus.yml: rule_files {prom.get('rule_files')} do not match the mounted {r}")
am_targets = [t for a in prom.get("alerting", {}).get("alertmanagers", []) for sc in a.get("static_configs", []) for t in sc["targets"]]
if "alertmanager:9093" not in am_targets:
    fail("prometheus.yml: alertmanager:9093 is not an alerting target")
# the copy promtool checks: rule files resolved to the repository's alerts.yml
check = dict(prom, rule_files=[str(alerts)])
outdir.mkdir(parents=True, exist_ok=True)
(outdir / "prometheus.yml").write_text(yaml.safe_dump(check, sort_keys=False))

dashboard = root / "deploy" / "grafana" / "tenantwatch.json"
dash_mounts = [dst for (svc, dst), host in mounts.items() if svc == "grafana" and host == dashboard]
prov = docs.get("grafana/provisioning/dashboards/tenantwatch.yaml", {})
paths = [p["options"]["path"] for p in prov.get("providers", [])]
if not dash_mounts or not any(d.startswith(p.rstrip("/") + "/") for d in dash_mounts for p in paths):
    fail(f"grafana: the dashboard is mounted at {dash_mounts}, outside the provisioned paths {paths}")
if ("grafana", "/etc/grafana/provisioning") not in mounts:
    fail("grafana: provisioning directory not mounted")
ds = docs.get("grafana/provisioning/datasources/prometheus.yaml", {}).get("datasources", [])
if not any(d.get("type") == "prometheus" and d.get("url") == "http://prometheus:9090" and d.get("isDefault") for d in ds):
    fail("grafana: no default Prometheus datasource at http://prometheus:9090")

for p in problems:
    print("FAIL", p)
if not problems:
    print(f"ok: {len(docs)} YAML files parse; compose.yaml matches the Compose schema; "
          f"{len(services)} services wired (rules, dashboard, provisioning, scrape job)")
sys.exit(1 if problems else 0)
