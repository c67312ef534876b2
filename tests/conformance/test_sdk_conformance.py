"""Conformance of `tenantwatch sim` with Microsoft's own client libraries.

Starts the simulator binary, reads the config it writes, and drives it with
msal, azure-identity and azure-keyvault-secrets exactly as a real client
would, with TLS verification on (the simulator's CA is passed explicitly).

Run from the repository root:
    python -m venv .venv && .venv/bin/pip install -r tests/conformance/requirements.txt
    cargo build
    .venv/bin/pytest tests/conformance -v
TENANTWATCH_BIN overrides the binary (default target/debug/tenantwatch).
"""

import os
import pathlib
import queue
import subprocess
import threading
import tomllib
import uuid

import msal
import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
PARTNER_CENTER_SCOPE = "https://api.partnercenter.microsoft.com/user_impersonation"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _binary() -> pathlib.Path:
    env = os.environ.get("TENANTWATCH_BIN")
    path = pathlib.Path(env) if env else REPO_ROOT / "target" / "debug" / "tenantwatch"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        pytest.fail(f"tenantwatch binary not found at {path}; run `cargo build` or set TENANTWATCH_BIN")
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The running simulator: its config (parsed TOML), secrets and CA path.

    `requests` lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's
    `verify` (which is how msal passes its CA), so while the simulator runs
    both point at its CA. Verification itself stays on.
    """
    state_dir = tmp_path_factory.mktemp("sim")
    config_path = state_dir / "tenantwatch.toml"
    proc = subprocess.Popen(
        [
            str(_binary()),
            "sim",
            "--listen", "127.0.0.1:0",
            "--tenants", "3",
            "--write-config", str(config_path),
            "--state-dir", str(state_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    saved_env = {var: os.environ.get(var) for var in CA_ENV_VARS}
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        seen = []
        while True:
            try:
                line = lines.get(timeout=READY_TIMEOUT_S)
            except queue.Empty:
                pytest.fail(f"simulator not ready after {READY_TIMEOUT_S}s; stdout so far: {seen}")
            if line is None:
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"simulator exited (code {proc.wait()}) before ready: {seen} {err}")
            seen.append(line)
            if line == "ready":
                break

        with open(config_path, "rb") as f:
            cfg = tomllib.load(f)
        for var in CA_ENV_VARS:
            os.environ[var] = cfg["cloud"]["ca_file"]
        partner_secret = pathlib.Path(cfg["partner"]["client_secret_file"]).read_text()
        identity = cfg["store"]["keyvault"]["identity"]
        identity_secret = pathlib.Path(identity["client_secret_file"]).read_text()
        yield {
            "cfg": cfg,
            "ca": cfg["cloud"]["ca_file"],
            "login": cfg["cloud"]["login"],
            "graph": cfg["cloud"]["graph"],
            "partner_center": cfg["cloud"]["partner_center"],
            "vault_url": cfg["store"]["keyvault"]["url"],
            "secret_name": cfg["store"]["keyvault"]["secret_name"],
            "partner_tenant": cfg["partner"]["tenant_id"],
            "partner_client": cfg["partner"]["client_id"],
            "partner_secret": partner_secret,
            "identity_tenant": identity["tenant_id"],
            "identity_client": identity["client_id"],
            "identity_secret": identity_secret,
        }
    finally:
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _secret_client(sim) -> SecretClient:
    credential = ClientSecretCredential(
        sim["identity_tenant"],
        sim["identity_client"],
        sim["identity_secret"],
        authority=sim["login"],
        disable_instance_discovery=True,
        connection_verify=sim["ca"],
    )
    # The challenge names resource vault.azure.net while the vault is on
    # 127.0.0.1, so the SDK's resource/host match is the one check relaxed.
    return SecretClient(
        vault_url=sim["vault_url"],
        credential=credential,
        verify_challenge_resource=False,
        connection_verify=sim["ca"],
    )


def _partner_app(sim, tenant: str, secret: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        sim["partner_client"],
        client_credential=secret if secret is not None else sim["partner_secret"],
        authority=f"{sim['login']}/{tenant}",
        instance_discovery=False,
        verify=sim["ca"],
    )


def _stored_refresh_token(sim) -> str:
    return _secret_client(sim).get_secret(sim["secret_name"]).value


def _customers(sim, pc_token: str) -> list:
    """All customers from Partner Center, following the continuation links."""
    url = f"{sim['partner_center']}/v1/customers?size=2"
    headers = {"Authorization": f"Bearer {pc_token}", "Accept": "application/json"}
    items = []
    for _ in range(10):
        correlation = str(uuid.uuid4())
        r = requests.get(url, headers={**headers, "MS-CorrelationId": correlation}, verify=sim["ca"], timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["MS-CorrelationId"] == correlation
        body = r.json()
        assert body["attributes"] == {"objectType": "Collection"}
        items.extend(body["items"])
        nxt = body["links"].get("next")
        if not nxt:
            return items
        url = sim["partner_center"] + nxt["uri"]
        headers = {
            "Authorization": f"Bearer {pc_token}",
            "Accept": "application/json",
            **{h["key"]: h["value"] for h in nxt["headers"]},
        }
    pytest.fail("Partner Center paging did not end")


def test_keyvault_sdk_challenge_get_set_versions(sim):
    client = _secret_client(sim)

    seeded = client.get_secret(sim["secret_name"])
    assert seeded.value, "the vault is seeded with the partner refresh token"
    assert seeded.id.startswith(f"{sim['vault_url']}/secrets/{sim['secret_name']}/")
    assert len(seeded.properties.version) == 32

    first = client.set_secret("conformance-test", "value-one", content_type="text/plain")
    second = client.set_secret("conformance-test", "value-two")
    assert first.properties.version != second.properties.version
    assert first.properties.content_type == "text/plain"

    got = client.get_secret("conformance-test", first.properties.version)
    assert got.value == "value-one"
    assert client.get_secret("conformance-test").value == "value-two"

    versions = {p.version for p in client.list_properties_of_secret_versions("conformance-test")}
    assert {first.properties.version, second.properties.version} <= versions

    # Enough versions to span several pages (the service caps pages at 25).
    for i in range(26):
        client.set_secret("conformance-paging", f"v{i}")
    assert len(list(client.list_properties_of_secret_versions("conformance-paging"))) == 26

    updated = client.update_secret_properties("conformance-test", first.properties.version, tags={"k": "v"})
    assert updated.tags == {"k": "v"}

    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("does-not-exist")
    assert e.value.error.code == "SecretNotFound"


def test_msal_refresh_token_partner_center_then_customer_graph(sim):
    rt = _stored_refresh_token(sim)

    partner = _partner_app(sim, sim["partner_tenant"])
    pc = partner.acquire_token_by_refresh_token(rt, scopes=[PARTNER_CENTER_SCOPE])
    assert "access_token" in pc, pc
    assert pc["token_type"] == "Bearer"
    assert pc.get("refresh_token") and pc["refresh_token"] != rt, "every redemption returns a new refresh token"
    assert PARTNER_CENTER_SCOPE in pc["scope"].split()

    customers = _customers(sim, pc["access_token"])
    assert len(customers) == 3
    customer = customers[0]["companyProfile"]["tenantId"]
    assert customers[0]["id"] == customer

    # The old refresh token stays valid, as Entra's do.
    app = _partner_app(sim, customer)
    graph = app.acquire_token_by_refresh_token(rt, scopes=[GRAPH_SCOPE])
    assert "access_token" in graph, graph
    assert graph["refresh_token"] != rt

    r = requests.get(
        f"{sim['graph']}/v1.0/organization",
        headers={"Authorization": f"Bearer {graph['access_token']}"},
        verify=sim["ca"],
        timeout=30,
    )
    assert r.status_code == 200, r.text
    org = r.json()
    assert org["value"][0]["id"] == customer
    assert org["value"][0]["verifiedDomains"][0]["name"] == customers[0]["companyProfile"]["domain"]

    # A customer domain works as the authority's tenant too.
    by_domain = _partner_app(sim, customers[1]["companyProfile"]["domain"])
    res = by_domain.acquire_token_by_refresh_token(graph["refresh_token"], scopes=[GRAPH_SCOPE])
    assert "access_token" in res, res

    # Graph refuses a token minted for another audience.
    bad = requests.get(
        f"{sim['graph']}/v1.0/organization",
        headers={"Authorization": f"Bearer {pc['access_token']}"},
        verify=sim["ca"],
        timeout=30,
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_msal_client_credentials_for_service_identity(sim):
    app = msal.ConfidentialClientApplication(
        sim["identity_client"],
        client_credential=sim["identity_secret"],
        authority=f"{sim['login']}/{sim['identity_tenant']}",
        instance_discovery=False,
        verify=sim["ca"],
    )
    res = app.acquire_token_for_client(scopes=[VAULT_SCOPE])
    assert "access_token" in res, res
    assert res["token_type"] == "Bearer"
    assert "refresh_token" not in res


def test_msal_wrong_secret_is_invalid_client(sim):
    app = _partner_app(sim, sim["partner_tenant"], secret="not-the-secret")
    res = app.acquire_token_by_refresh_token(_stored_refresh_token(sim), scopes=[PARTNER_CENTER_SCOPE])
    assert res.get("error") == "invalid_client", res
    assert 7000215 in res.get("error_codes", []), res


def test_msal_unknown_tenant_fails_discovery(sim):
    with pytest.raises(ValueError):
        _partner_app(sim, "no-such-tenant.onmicrosoft.com")
