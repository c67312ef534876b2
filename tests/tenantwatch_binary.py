"""The tenantwatch binary the Python test suites start (tests/conformance,
tests/browser): `$TENANTWATCH_BIN` (relative to the repository) or
target/debug/tenantwatch."""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def binary() -> pathlib.Path:
    env = os.environ.get("TENANTWATCH_BIN")
    path = pathlib.Path(env) if env else REPO_ROOT / "target" / "debug" / "tenantwatch"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.exists():
        pytest.fail(f"tenantwatch binary not found at {path}; run `cargo build` or set TENANTWATCH_BIN")
    return path
