"""Clients of the running simulator shared by the conformance modules:
the vault through azure-keyvault-secrets, the partner app through msal,
and the plain-HTTP admin API."""

import msal
import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient


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


def _admin(sim, method: str, path: str, **params) -> dict:
    r = requests.request(method, sim["admin"] + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()
