#!/usr/bin/env python3
"""Consistency checks for deploy/kubernetes/ that a schema cannot express.

kubernetes-validate checks every built-in object against the Kubernetes OpenAPI
schema; it has no schema for the Prometheus Operator's CRDs, so this script checks
ServiceMonitor and PrometheusRule against a small strict schema of the fields they
may use here (names as in the operator's monitoring.coreos.com/v1 CRDs), and then
checks what ties the manifests together:

- the PrometheusRule carries exactly the groups of deploy/prometheus/alerts.yml
  (regenerate with --write-prometheusrule);
- every workload runs as non-root with a read-only root filesystem, no privilege
  escalation, all capabilities dropped and the RuntimeDefault seccomp profile,
  probes /healthz (liveness) and /readyz (readiness) on the metrics port;
- every ConfigMap/Secret/ServiceAccount a pod refers to exists in its variant;
  the Secret holds every relative *_file the config names;
- the config listens on 0.0.0.0:9464; the sharded variant has shard = "auto" and
  shard_count = replicas; the workload-identity variant has the ServiceAccount
  annotation, the pod label and identity kind workload_identity;
- the Service selects the pods and the ServiceMonitor selects the Service.

Usage: check_k8s.py REPO_ROOT [--write-prometheusrule]
"""
import copy
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(sys.argv[1]).resolve()
K8S = ROOT / "deploy" / "kubernetes"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_FILE = K8S / "common" / "prometheusrule.yaml"
VARIANTS = ["deployment", "workload-identity", "sharded"]

failures = []


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


class LiteralDumper(yaml.SafeDumper):
    pass


def _str(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


LiteralDumper.add_representer(str, _str)


def prometheusrule_text():
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "tenantwatch",
            "namespace": "tenantwatch",
            "labels": {"app.kubernetes.io/name": "tenantwatch"},
        },
        "spec": {"groups": groups},
    }
    header = (
        "# GENERATED from deploy/prometheus/alerts.yml by\n"
        "#   tests/deploy/.venv/bin/python tests/deploy/check_k8s.py . --write-prometheusrule\n"
        "# Do not edit by hand: tests/deploy/kubernetes.sh fails when the two differ.\n"
        "# Your Prometheus's ruleSelector may need another label (e.g. release: <name>).\n"
    )
    return header + yaml.dump(doc, Dumper=LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)


if "--write-prometheusrule" in sys.argv:
    RULE_FILE.write_text(prometheusrule_text())
    print(f"wrote {RULE_FILE.relative_to(ROOT)}")
    sys.exit(0)

# --- strict schemas for the two CRDs (the subset of fields used here) -------------
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": STRMAP, "annotations": STRMAP},
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": STRMAP, "matchExpressions": {"type": "array"}},
}
SERVICEMONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}
RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": ["string", "integer"]},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": STRMAP,
        "annotations": STRMAP,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}
PROMETHEUSRULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": DURATION,
                            "limit": {"type": "integer"},
                            "rules": {"type": "array", "items": RULE},
                        },
                    },
                }
            },
        },
    },
}

common = {}
for f in sorted((K8S / "common").glob("*.yaml")):
    for d in load(f):
        common[(d["kind"], d["metadata"]["name"])] = (f, d)

# --- CRDs ---------------------------------------------------------------------------
for (kind, name), (f, d) in common.items():
    schema = {"ServiceMonitor": SERVICEMONITOR, "PrometheusRule": PROMETHEUSRULE}.get(kind)
    if schema is None:
        continue
    for err in jsonschema.Draft202012Validator(schema).iter_errors(d):
        fail(f.relative_to(ROOT), f"{kind}: {'/'.join(map(str, err.absolute_path))}: {err.message}")

if not RULE_FILE.exists():
    fail(RULE_FILE.relative_to(ROOT), "missing; generate it with --write-prometheusrule")
elif RULE_FILE.read_text() != prometheusrule_text():
    fail(RULE_FILE.relative_to(ROOT), "differs from deploy/prometheus/alerts.yml; regenerate with "
         "`tests/deploy/.venv/bin/python tests/deploy/check_k8s.py . --write-prometheusrule`")
else:
    pr = yaml.safe_load(RULE_FILE.read_text())
    if pr["spec"]["groups"] != yaml.safe_load(ALERTS.read_text())["groups"]:
        fail(RULE_FILE.relative_to(ROOT), "groups differ from alerts.yml")

service = common.get(("Service", "tenantwatch"), (None, None))[1]
sm = common.get(("ServiceMonitor", "tenantwatch"), (None, None))[1]
if service is None or sm is None:
    fail("deploy/kubernetes/common", "Service or ServiceMonitor 'tenantwatch' missing")
else:
    sel = sm["spec"]["selector"]["matchLabels"]
    if any(service["metadata"]["labels"].get(k) != v for k, v in sel.items()):
        fail("servicemonitor.yaml", f"selector {sel} does not match the Service's labels")
    ports = {p["name"] for p in service["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        if ep.get("port") not in ports:
            fail("servicemonitor.yaml", f"endpoint port {ep.get('port')!r} is not a Service port {ports}")
    if service["metadata"]["labels"].get(sm["spec"].get("jobLabel")) != "tenantwatch":
        fail("servicemonitor.yaml", "jobLabel must give job=\"tenantwatch\" (the alert rules expect it)")


def check_container_security(where, pod):
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        fail(where, "pod securityContext.runAsNonRoot is not true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "pod seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        fail(where, "automountServiceAccountToken is not false")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        fail(where, "uses host namespaces")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        cw = f"{where} container {c['name']}"
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(cw, "readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(cw, "allowPrivilegeEscalation is not false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(cw, "capabilities.drop is not [ALL]")
        if sc.get("capabilities", {}).get("add"):
            fail(cw, "adds capabilities")
        if sc.get("privileged"):
            fail(cw, "privileged")
        if "limits" not in c.get("resources", {}) or "memory" not in c["resources"]["limits"]:
            fail(cw, "no memory limit")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if ports.get("metrics") != 9464:
            fail(cw, "no port named metrics = 9464")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") not in ("metrics", 9464):
                fail(cw, f"{probe} is not GET {path} on the metrics port")
        if c.get("args", [])[:1] != ["run"]:
            fail(cw, "args do not start with run")


for variant in VARIANTS:
    vdir = K8S / variant
    objs = {}
    for f in sorted(vdir.glob("*.yaml")):
        for d in load(f):
            objs[(d["kind"], d["metadata"]["name"])] = d
            if d["metadata"].get("namespace") != "tenantwatch":
                fail(f.relative_to(ROOT), f"{d['kind']} {d['metadata']['name']} not in namespace tenantwatch")
    workloads = [d for (k, _), d in objs.items() if k in ("Deployment", "StatefulSet")]
    if len(workloads) != 1:
        fail(variant, f"expected one Deployment or StatefulSet, found {len(workloads)}")
        continue
    wl = workloads[0]
    where = f"{variant}/{wl['kind']}"
    pod = wl["spec"]["template"]["spec"]
    labels = wl["spec"]["template"]["metadata"]["labels"]
    check_container_security(where, pod)
    if any(labels.get(k) != v for k, v in wl["spec"]["selector"]["matchLabels"].items()):
        fail(where, "selector does not match the pod labels")
    if service and any(labels.get(k) != v for k, v in service["spec"]["selector"].items()):
        fail(where, "the common Service does not select these pods")
    sa = pod.get("serviceAccountName")
    if ("ServiceAccount", sa) not in objs:
        fail(where, f"ServiceAccount {sa!r} not defined in {variant}/")
    config = secret = None
    for v in pod.get("volumes", []):
        if "configMap" in v:
            cm = objs.get(("ConfigMap", v["configMap"]["name"]))
            if cm is None:
                fail(where, f"ConfigMap {v['configMap']['name']!r} not defined")
            else:
                config = cm
        if "secret" in v:
            secret = objs.get(("Secret", v["secret"]["secretName"]))
            if secret is None:
                fail(where, f"Secret {v['secret']['secretName']!r} not defined")
    volumes = {v["name"] for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    for path, name in mounts.items():
        if name not in volumes:
            fail(where, f"volumeMount {path} refers to missing volume {name}")
    env = {e["name"]: e.get("value") for c in pod["containers"] for e in c.get("env", [])}
    if config is None or "tenantwatch.toml" not in config.get("data", {}):
        fail(where, "no ConfigMap with tenantwatch.toml mounted")
        continue
    if mounts.get("/etc/tenantwatch") is None:
        fail(where, "the config is not mounted at /etc/tenantwatch")
    try:
        toml = tomllib.loads(config["data"]["tenantwatch.toml"])
    except tomllib.TOMLDecodeError as e:
        fail(f"{variant}/configmap.yaml", f"tenantwatch.toml: {e}")
        continue
    if toml.get("server", {}).get("listen") != "0.0.0.0:9464":
        fail(f"{variant}/configmap.yaml", "server.listen is not 0.0.0.0:9464 (unreachable from outside the pod)")
    # every relative *_file must be a key of the mounted Secret, in CREDENTIALS_DIRECTORY
    files = []

    def walk(prefix, t):
        for k, v in t.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            elif k.endswith("_file") and isinstance(v, str) and not v.startswith("/"):
                files.append((f"{prefix}{k}", v))

    walk("", toml)
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if files and (cred_dir is None or mounts.get(cred_dir) is None):
        fail(where, "CREDENTIALS_DIRECTORY is not set to the mounted Secret's path")
    keys = set((secret or {}).get("stringData", {})) | set((secret or {}).get("data", {}))
    for key, name in files:
        if name not in keys:
            fail(f"{variant}/secret.yaml", f"has no key {name!r} for {key}")
    identity = toml.get("store", {}).get("keyvault", {}).get("identity", {})
    if variant == "workload-identity":
        sa_obj = objs.get(("ServiceAccount", sa), {})
        if "azure.workload.identity/client-id" not in sa_obj.get("metadata", {}).get("annotations", {}):
            fail(where, "ServiceAccount lacks the azure.workload.identity/client-id annotation")
        if labels.get("azure.workload.identity/use") != "true":
            fail(where, "pod label azure.workload.identity/use is not \"true\"")
        if identity.get("kind") != "workload_identity":
            fail(f"{variant}/configmap.yaml", "store.keyvault.identity.kind is not workload_identity")
    if variant == "sharded":
        tenants = toml.get("tenants", {})
        if wl["kind"] != "StatefulSet":
            fail(where, "the sharded variant must be a StatefulSet (pod names tenantwatch-N)")
        if wl["metadata"]["name"] != "tenantwatch":
            fail(where, "StatefulSet must be named tenantwatch (the daemon parses the hostname tenantwatch-N)")
        if tenants.get("shard") != "auto" or tenants.get("shard_count") != wl["spec"]["replicas"]:
            fail(f"{variant}/configmap.yaml", f"tenants.shard must be \"auto\" and shard_count = replicas ({wl['spec']['replicas']})")
        if ("Service", wl["spec"].get("serviceName")) not in objs:
            fail(where, "serviceName does not name a Service in sharded/")

if failures:
    for f in failures:
        print("FAIL", f)
    sys.exit(1)
print(f"ok: CRDs, PrometheusRule = alerts.yml, {len(VARIANTS)} variants consistent and hardened")
