"""The simulator every conformance test module drives: `tenantwatch sim`
started as a process, one per module, ready when it prints `ready`."""

import os
import pathlib
import queue
import subprocess
import sys
import threading
import tomllib

import pytest

# The one definition of which binary to start, shared with the other suite.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tenantwatch_binary import binary as _binary  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def sim(request, tmp_path_factory):
    """The running simulator (one per test module, with the module's
    `SIM_TENANTS` customers, default 3): its config (parsed TOML), secrets
    and CA path.

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
            "--tenants", str(getattr(request.module, "SIM_TENANTS", 3)),
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

        # `key   value` lines printed before `ready`.
        printed = dict(line.split(None, 1) for line in seen if " " in line.strip())
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
            "state_dir": state_dir,
            "admin": printed["admin"],
            "imds": printed["imds"],
            "identity_endpoint": printed["identity_endpoint"],
            "identity_header": (state_dir / "identity-header").read_text(),
            "identity_cert": printed["identity_cert"],
            "partner_cert": printed["partner_cert"],
            "federated_token": printed["federated_token"],
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
