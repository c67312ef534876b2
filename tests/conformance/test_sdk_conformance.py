"""Conformance of `tenantwatch sim` with Microsoft's own client libraries.

Starts the simulator binary, reads the config it writes, and drives it with
msal, azure-identity and azure-keyvault-secrets exactly as a real client
would, with TLS verification on (the simulator's CA is passed explicitly):
secrets, certificates, managed identity (IMDS and App Service), workload
identity, device code and authorization code + PKCE consents. The admin API
(plain HTTP) stands in for the human where a flow needs one.

The `sim` fixture is in conftest.py, shared clients in simclient.py.

Run from the repository root:
    python -m venv .venv && .venv/bin/pip install -r tests/conformance/requirements.txt
    cargo build
    .venv/bin/pytest tests/conformance -v
TENANTWATCH_BIN overrides the binary (default target/debug/tenantwatch).
"""

import pathlib
import threading
import time
import urllib.parse
import uuid

import msal
import pytest
import requests
from azure.identity import (
    CertificateCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from simclient import _admin, _partner_app, _secret_client, _stored_refresh_token

PARTNER_CENTER_SCOPE = "https://api.partnercenter.microsoft.com/user_impersonation"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
# Managed identity variables the tests set; cleared so one test's choice of
# endpoint (IMDS or App Service) never leaks into another.
MI_ENV_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT")


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


# --------------------------------------------------------------- added flows


def _vault_secret(sim, credential) -> str:
    client = SecretClient(
        vault_url=sim["vault_url"],
        credential=credential,
        verify_challenge_resource=False,
        connection_verify=sim["ca"],
    )
    return client.get_secret(sim["secret_name"]).value


def _public_partner_app(sim) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        sim["partner_client"],
        authority=f"{sim['login']}/{sim['partner_tenant']}",
        instance_discovery=False,
        verify=sim["ca"],
    )


def test_msal_device_code_approved_on_the_verification_page(sim):
    app = _public_partner_app(sim)
    flow = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{sim['login']}/devicelogin"
    assert flow["expires_in"] == 900 and flow["interval"] == 1
    assert flow["message"] == (
        f"To sign in, use a web browser to open the page {flow['verification_uri']} "
        f"and enter the code {flow['user_code']} to authenticate."
    )
    page = requests.get(flow["verification_uri"], verify=sim["ca"], timeout=30)
    assert page.status_code == 200 and 'name="otc"' in page.text
    # The admin types the code and signs in.
    r = requests.post(flow["verification_uri"], data={"otc": flow["user_code"]}, verify=sim["ca"], timeout=30)
    assert r.status_code == 200, r.text

    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert result.get("refresh_token"), "the consent yields a refresh token"
    assert PARTNER_CENTER_SCOPE in result["scope"].split()
    assert result["id_token_claims"]["tid"] == sim["partner_tenant"]

    # The new refresh token reaches a customer like the seeded one.
    pc = _partner_app(sim, sim["partner_tenant"]).acquire_token_by_refresh_token(
        result["refresh_token"], scopes=[GRAPH_SCOPE]
    )
    assert "access_token" in pc, pc


def test_msal_device_code_declined_through_the_admin_api(sim):
    app = _public_partner_app(sim)
    flow = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    assert _admin(sim, "POST", "/_sim/device/deny", user_code=flow["user_code"])["approved"] is False
    result = app.acquire_token_by_device_flow(flow)
    assert result.get("error") == "authorization_declined", result


def test_msal_device_code_polls_until_approved(sim):
    app = _public_partner_app(sim)
    flow = app.initiate_device_flow(scopes=[PARTNER_CENTER_SCOPE])
    # Approve from another thread while msal is polling (authorization_pending).
    timer = threading.Timer(2.5, lambda: _admin(sim, "POST", "/_sim/device/approve", user_code=flow["user_code"]))
    timer.start()
    try:
        result = app.acquire_token_by_device_flow(flow)
    finally:
        timer.join()
    assert "access_token" in result, result


# msal recommends form_post for a web server; the test reads the query redirect.
@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
def test_msal_auth_code_flow_with_pkce(sim):
    app = _partner_app(sim, sim["partner_tenant"])
    flow = app.initiate_auth_code_flow(scopes=[PARTNER_CENTER_SCOPE], redirect_uri="http://localhost:8400")
    assert "code_verifier" in flow
    r = requests.get(flow["auth_uri"], allow_redirects=False, verify=sim["ca"], timeout=30)
    assert r.status_code == 302, r.text
    location = urllib.parse.urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == "http://localhost:8400"
    params = dict(urllib.parse.parse_qsl(location.query))
    assert params["state"] == flow["state"] and params["code"]

    result = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in result, result
    assert result.get("refresh_token")
    assert result["id_token_claims"]["preferred_username"].startswith("admin@")

    # Codes are single use.
    again = app.acquire_token_by_auth_code_flow(flow, params)
    assert again.get("error") == "invalid_grant" and 54005 in again.get("error_codes", []), again


def test_auth_code_refuses_unregistered_redirect_and_unknown_client(sim):
    base = f"{sim['login']}/{sim['partner_tenant']}/oauth2/v2.0/authorize"
    common = {"response_type": "code", "scope": PARTNER_CENTER_SCOPE, "state": "s"}
    r = requests.get(
        base,
        params={**common, "client_id": sim["partner_client"], "redirect_uri": "https://evil.example/cb"},
        allow_redirects=False, verify=sim["ca"], timeout=30,
    )
    assert r.status_code == 400 and "AADSTS50011" in r.text
    r = requests.get(
        base,
        params={**common, "client_id": str(uuid.uuid4()), "redirect_uri": "http://localhost"},
        allow_redirects=False, verify=sim["ca"], timeout=30,
    )
    assert r.status_code == 400 and "AADSTS700016" in r.text


def test_azure_identity_certificate_credential_reads_the_vault(sim):
    credential = CertificateCredential(
        sim["identity_tenant"],
        sim["identity_client"],
        certificate_path=sim["identity_cert"],
        authority=sim["login"],
        disable_instance_discovery=True,
        connection_verify=sim["ca"],
    )
    assert _vault_secret(sim, credential)


def _cert_parts(path: str) -> tuple[str, str]:
    pem = pathlib.Path(path).read_text()
    cert_pem = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return pem, cert_pem, cert.fingerprint(hashes.SHA1()).hex()


def test_msal_certificate_credential_rs256_and_ps256(sim):
    pem, cert_pem, sha1 = _cert_parts(sim["identity_cert"])
    for credential in (
        {"private_key": pem, "thumbprint": sha1},  # RS256 + x5t
        {"private_key": pem, "public_certificate": cert_pem},  # PS256 + x5t#S256 + x5c
    ):
        app = msal.ConfidentialClientApplication(
            sim["identity_client"],
            client_credential=credential,
            authority=f"{sim['login']}/{sim['identity_tenant']}",
            instance_discovery=False,
            verify=sim["ca"],
        )
        res = app.acquire_token_for_client(scopes=[VAULT_SCOPE])
        assert "access_token" in res, (credential.keys(), res)

    # The partner app's certificate redeems the refresh token.
    pem, _, sha1 = _cert_parts(sim["partner_cert"])
    partner = msal.ConfidentialClientApplication(
        sim["partner_client"],
        client_credential={"private_key": pem, "thumbprint": sha1},
        authority=f"{sim['login']}/{sim['partner_tenant']}",
        instance_discovery=False,
        verify=sim["ca"],
    )
    res = partner.acquire_token_by_refresh_token(_stored_refresh_token(sim), scopes=[PARTNER_CENTER_SCOPE])
    assert "access_token" in res, res

    # Another app's certificate is refused with the real code.
    wrong = msal.ConfidentialClientApplication(
        sim["identity_client"],
        client_credential={"private_key": pem, "thumbprint": sha1},
        authority=f"{sim['login']}/{sim['identity_tenant']}",
        instance_discovery=False,
        verify=sim["ca"],
    )
    res = wrong.acquire_token_for_client(scopes=[VAULT_SCOPE])
    assert res.get("error") == "invalid_client" and 700027 in res.get("error_codes", []), res


@pytest.fixture
def clean_mi_env(monkeypatch):
    for var in MI_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_managed_identity_imds(sim, clean_mi_env):
    origin = sim["imds"].removesuffix("/metadata/identity/oauth2/token")
    clean_mi_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", origin)
    assert _vault_secret(sim, ManagedIdentityCredential())
    assert _vault_secret(sim, ManagedIdentityCredential(client_id=sim["identity_client"]))

    # IMDS's own refusals.
    r = requests.get(sim["imds"], params={"api-version": "2018-02-01", "resource": "https://vault.azure.net"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "bad_request_102", r.text
    r = requests.get(
        sim["imds"],
        params={"api-version": "2018-02-01", "resource": "https://vault.azure.net", "client_id": str(uuid.uuid4())},
        headers={"Metadata": "true"},
        timeout=30,
    )
    assert r.status_code == 400 and r.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    ok = requests.get(
        sim["imds"],
        params={"api-version": "2018-02-01", "resource": "https://vault.azure.net/"},
        headers={"Metadata": "true"},
        timeout=30,
    ).json()
    assert set(ok) == {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before", "resource", "token_type"}
    assert all(isinstance(ok[k], str) for k in ("expires_in", "expires_on", "ext_expires_in", "not_before"))


def test_managed_identity_app_service(sim, clean_mi_env):
    clean_mi_env.setenv("IDENTITY_ENDPOINT", sim["identity_endpoint"])
    clean_mi_env.setenv("IDENTITY_HEADER", sim["identity_header"])
    assert _vault_secret(sim, ManagedIdentityCredential())

    r = requests.get(
        sim["identity_endpoint"],
        params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        timeout=30,
    )
    assert r.status_code == 401, r.text


def test_workload_identity_credential(sim, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(pathlib.Path(sim["federated_token"]).read_text())
    credential = WorkloadIdentityCredential(
        tenant_id=sim["identity_tenant"],
        client_id=sim["identity_client"],
        token_file_path=str(token_file),
        authority=sim["login"],
        disable_instance_discovery=True,
        connection_verify=sim["ca"],
    )
    assert _vault_secret(sim, credential)


def test_keyvault_sdk_rides_out_injected_throttling(sim):
    client = _secret_client(sim)
    client.get_secret(sim["secret_name"])  # token cached before the fault
    before = _admin(sim, "GET", "/_sim/requests")["keyvault"]["total"]
    _admin(sim, "POST", "/_sim/faults/keyvault", throttle=1, seconds=1)
    started = time.monotonic()
    assert client.get_secret(sim["secret_name"]).value
    assert time.monotonic() - started >= 0.9, "the SDK waited for Retry-After"
    after = _admin(sim, "GET", "/_sim/requests")["keyvault"]["total"]
    assert after - before >= 2, "the throttled attempt was counted"


def test_admin_api_reports_secret_and_clock_without_values(sim):
    info = _admin(sim, "GET", f"/_sim/secrets/{sim['secret_name']}")
    assert info["refresh_token_valid"] is True
    assert len(info["version"]) == 32
    assert _stored_refresh_token(sim) not in str(info)
    clock = _admin(sim, "GET", "/_sim/clock")
    assert abs(clock["now"] - time.time()) < 5 + clock["offset_seconds"]
