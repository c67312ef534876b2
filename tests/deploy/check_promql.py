#!/usr/bin/env python3
"""PromQL checks for the shipped alert rules and Grafana dashboard.

  check_promql.py alerts  ALERTS.yml ALERTS_TEST.yml EXPORTED_METRICS.txt
      every tenantwatch_* name in a rule is exported; every alert has a unit test
      case where it fires and one where it must not.
  check_promql.py grafana DASHBOARD.json EXPORTED_METRICS.txt
      the dashboard's structure (datasource variable, tenant variable, unique ids,
      no overlapping panels); every PromQL expression (panel targets, templating
      queries) parses — written as recording rules to a temporary file and checked
      by `promtool check rules`, after replacing Grafana variables — and uses only
      exported tenantwatch_* metrics. With --print, lists the expressions.
  check_promql.py readme README.md EXPORTED_METRICS.txt
      every metric named in README.md's Metrics section is in the exported list.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

NAME = re.compile(r"\btenantwatch_[a-zA-Z0-9_]+")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def exported(path):
    names = set()
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line)
    return names


def unknown_metrics(expr, known):
    bad = []
    for name in NAME.findall(expr):
        if name in known:
            continue
        if any(name.endswith(s) and name[: -len(s)] in known for s in HIST_SUFFIXES):
            continue
        bad.append(name)
    return bad


def promtool_parse(exprs):
    """Runs promtool check rules on exprs as recording rules; returns (ok, output)."""
    rules = [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, width=10000)
        path = f.name
    try:
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        return r.returncode == 0, (r.stdout + r.stderr).strip()
    finally:
        Path(path).unlink()


def check_alerts(alerts_path, tests_path, metrics_path):
    known = exported(metrics_path)
    problems = []
    groups = yaml.safe_load(Path(alerts_path).read_text())["groups"]
    names = []
    for g in groups:
        for r in g["rules"]:
            what = r.get("alert") or r.get("record")
            for m in unknown_metrics(str(r["expr"]), known):
                problems.append(f"{what}: {m} is not an exported metric (tests/deploy/exported-metrics.txt)")
            if "alert" in r:
                names.append(r["alert"])
                for key in ("severity", "threshold"):
                    if key not in r.get("labels", {}):
                        problems.append(f"{what}: no {key} label")
                for key in ("summary", "description", "runbook"):
                    if key not in r.get("annotations", {}):
                        problems.append(f"{what}: no {key} annotation")
    fires, silent = set(), set()
    for t in yaml.safe_load(Path(tests_path).read_text())["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    for n in sorted(set(names)):
        if n not in fires:
            problems.append(f"{n}: no unit test where it fires")
        if n not in silent:
            problems.append(f"{n}: no unit test where it must not fire")
    for n in sorted((fires | silent) - set(names)):
        problems.append(f"{n}: tested but not defined")
    for p in problems:
        print("FAIL", p)
    if not problems:
        print(f"ok: {len(names)} alerts use only exported metrics; each has a firing and a not-firing test")
    return not problems


GRAFANA_FUNCS = re.compile(r"^\s*(label_values|query_result|metrics|label_names)\s*\((.*)\)\s*$", re.S)


def template_expr(q):
    """The PromQL inside a Grafana Prometheus variable query, or None."""
    if isinstance(q, dict):
        q = q.get("query", "")
    if not isinstance(q, str) or not q.strip():
        return None
    m = GRAFANA_FUNCS.match(q)
    if not m:
        return q
    func, args = m.group(1), m.group(2)
    if func == "query_result":
        return args
    if func == "label_values":
        # label_values(expr, label) or label_values(label)
        depth = 0
        for i in range(len(args) - 1, -1, -1):
            c = args[i]
            if c in ")}]":
                depth += 1
            elif c in "({[":
                depth -= 1
            elif c == "," and depth == 0:
                return args[:i]
        return None
    return None


def substitute(expr):
    e = expr
    for var, val in (("$__rate_interval", "5m"), ("${__rate_interval}", "5m"), ("$__interval_ms", "60000"),
                     ("$__interval", "1m"), ("${__interval}", "1m"), ("$__range_s", "3600"),
                     ("$__range_ms", "3600000"), ("$__range", "1h"), ("${__range}", "1h")):
        e = e.replace(var, val)
    e = re.sub(r"\$\{[a-zA-Z0-9_]+(:[a-z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*", "x", e)
    return e


def check_grafana(dashboard_path, metrics_path, show=False):
    known = exported(metrics_path)
    d = json.loads(Path(dashboard_path).read_text())
    problems = []
    exprs = []  # (where, original, substituted)

    tpl = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = tpl.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("templating: no datasource variable of type prometheus named 'datasource'")
    if "tenant" not in tpl:
        problems.append("templating: no 'tenant' variable")
    for name, v in tpl.items():
        if v.get("type") == "query":
            if v.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"variable {name}: datasource is not ${{datasource}}")
            e = template_expr(v.get("query"))
            if e is None:
                problems.append(f"variable {name}: no PromQL in its query")
            else:
                exprs.append((f"variable {name}", e, substitute(e)))
    if not d.get("uid") or not d.get("title"):
        problems.append("dashboard: no uid or title")

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    ids, boxes = set(), []
    for p in panels(d.get("panels", [])):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(k in g for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
            problems.append(f"{where}: bad gridPos {g}")
        elif p.get("type") != "row":
            for other, og in boxes:
                if g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]:
                    problems.append(f"{where}: overlaps {other}")
            boxes.append((where, g))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: datasource is not ${{datasource}}")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{where}: duplicate refId")
        for t in targets:
            if t.get("datasource", {}).get("uid", "${datasource}") != "${datasource}":
                problems.append(f"{where} {t.get('refId')}: datasource is not ${{datasource}}")
            e = t.get("expr")
            if not e:
                problems.append(f"{where} {t.get('refId')}: no expr")
                continue
            exprs.append((f"{where} {t.get('refId')}", e, substitute(e)))

    for where, e, s in exprs:
        if "$" in s:
            problems.append(f"{where}: unreplaced variable in {s}")
        for m in unknown_metrics(e, known):
            problems.append(f"{where}: {m} is not an exported metric (tests/deploy/exported-metrics.txt)")
        if not NAME.search(e):
            problems.append(f"{where}: uses no tenantwatch metric: {e}")
    ok, out = promtool_parse([s for _, _, s in exprs])
    if not ok:
        # find the culprits one by one for a readable message
        for where, e, s in exprs:
            one_ok, one_out = promtool_parse([s])
            if not one_ok:
                problems.append(f"{where}: does not parse: {s}\n    {one_out}")
    if show:
        for where, e, s in exprs:
            print(f"{where}: {e}")
    for p in problems:
        print("FAIL", p)
    if not problems:
        print(f"ok: {len(ids)} panels, {len(exprs)} PromQL expressions parse (promtool) and use only exported metrics")
    return not problems


def check_readme(readme_path, metrics_path):
    known = exported(metrics_path)
    text = Path(readme_path).read_text()
    m = re.search(r"^### Metrics\n(.*?)(?=^#{1,3} )", text, re.S | re.M)
    if not m:
        print("FAIL README.md has no '### Metrics' section")
        return False
    names = sorted(set(NAME.findall(m.group(1))))
    missing = [n for n in names if n not in known]
    for n in missing:
        print(f"FAIL README.md lists {n}, tests/deploy/exported-metrics.txt does not")
    if not missing:
        print(f"ok: the {len(names)} metrics in README.md's Metrics table are all in exported-metrics.txt")
    return not missing


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "alerts":
        ok = check_alerts(*sys.argv[2:5])
    elif mode == "grafana":
        ok = check_grafana(sys.argv[2], sys.argv[3], show="--print" in sys.argv)
    elif mode == "readme":
        ok = check_readme(*sys.argv[2:4])
    else:
        sys.exit(__doc__)
    sys.exit(0 if ok else 1)
