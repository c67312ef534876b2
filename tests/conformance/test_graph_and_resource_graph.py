"""Conformance of the simulated Microsoft Graph (Microsoft 365 licences and
directory subscriptions, GDAP relationships and their access assignments,
app registrations) and Azure Resource Graph with Microsoft's own SDKs:
msgraph-sdk (kiota: typed models, enums, `@odata.nextLink` paging, the
text/plain `$count`) and azure-mgmt-resourcegraph (`$skipToken` paging,
error models, throttling retries). Every value is compared with the
simulator's ground truth (`GET /_sim/ground-truth`).
"""

import asyncio
import datetime
import ssl
import time

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.security.secure_scores.secure_scores_request_builder import SecureScoresRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory
from simclient import _admin, _partner_app, _stored_refresh_token

# The SDK's generated builders warn about their own deprecated classes.
pytestmark = pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")

# Enough customers for every special case (no licences, no score, legacy
# DAP, relationships ending soon, expired and terminated ones).
SIM_TENANTS = 12

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"

# tenantwatch's built-in Resource Graph query (src/collector/resource_graph.rs).
BUILTIN_QUERY = (
    "resources "
    "| summarize value = count() by subscriptionId, type = tolower(type), location "
    "| extend kind = 'resources' "
    "| union (healthresources "
    "| where type =~ 'microsoft.resourcehealth/availabilitystatuses' "
    "| extend state = tostring(properties.availabilityState), resourceType = tolower(tostring(properties.targetResourceType)) "
    "| summarize value = count() by subscriptionId, type = resourceType, location, state "
    "| extend kind = 'health') "
    "| union (advisorresources "
    "| where type =~ 'microsoft.advisor/recommendations' "
    "| summarize value = count() by category = tostring(properties.category), impact = tostring(properties.impact) "
    "| extend kind = 'advisor')"
)


class StaticToken:
    """A TokenCredential for one access token minted by msal, as a daemon
    holding a per-tenant token would present it."""

    def __init__(self, token: str, expires_on: int):
        self._token = AccessToken(token, expires_on)

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return self._token


def _credential(sim, tenant: str, scope: str) -> StaticToken:
    res = _partner_app(sim, tenant).acquire_token_by_refresh_token(_stored_refresh_token(sim), scopes=[scope])
    assert "access_token" in res, res
    return StaticToken(res["access_token"], int(time.time()) + int(res["expires_in"]))


def _graph(sim, tenant: str) -> GraphServiceClient:
    host = httpx.URL(sim["graph"]).host
    auth = AzureIdentityAuthenticationProvider(_credential(sim, tenant, GRAPH_SCOPE), scopes=[GRAPH_SCOPE], allowed_hosts=[host])
    client = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=sim["ca"])))
    adapter = GraphRequestAdapter(auth, client)
    adapter.base_url = f"{sim['graph']}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def _all(builder, first):
    """Follows `@odata.nextLink` with the SDK's own `with_url`."""
    page = first
    items, pages = list(page.value or []), 1
    while page.odata_next_link:
        page = await builder.with_url(page.odata_next_link).get()
        items.extend(page.value or [])
        pages += 1
    return items, pages


def _ts(dt: datetime.datetime) -> int:
    return int(dt.timestamp())


@pytest.fixture(scope="module")
def truth(sim) -> dict:
    return _admin(sim, "GET", "/_sim/ground-truth")


def _all_tenants(truth):
    return truth["tenants"] + truth["gdap_only"]


def test_msgraph_sdk_reads_licences_health_scores_users_and_organization(sim, truth):
    assert len(truth["tenants"]) == SIM_TENANTS and len(truth["gdap_only"]) == 1

    async def check(tt):
        g = _graph(sim, tt["tenant_id"])
        skus, _ = await _all(g.subscribed_skus, await g.subscribed_skus.get())
        assert [
            (s.sku_part_number, s.prepaid_units.enabled, s.consumed_units, s.prepaid_units.suspended, s.prepaid_units.warning)
            for s in skus
        ] == [(l["sku_part_number"], l["enabled"], l["consumed"], l["suspended"], l["warning"]) for l in tt["licenses"]]

        overviews = g.admin.service_announcement.health_overviews
        services, pages = await _all(overviews, await overviews.get())
        assert pages >= 3, "four per page"
        # `status` parses into the SDK's ServiceHealthStatus enum.
        assert [(s.service, s.status.value) for s in services] == [(s["service"], s["status"]) for s in tt["services"]]

        top1 = RequestConfiguration(
            query_parameters=SecureScoresRequestBuilder.SecureScoresRequestBuilderGetQueryParameters(top=1)
        )
        scores = await g.security.secure_scores.get(request_configuration=top1)
        if tt["secure_score"] is None:
            assert scores.value == []
        else:
            assert len(scores.value) == 1
            assert [scores.value[0].current_score, scores.value[0].max_score] == tt["secure_score"]

        eventual = RequestConfiguration()
        eventual.headers.add("ConsistencyLevel", "eventual")
        assert await g.users.count.get(request_configuration=eventual) == tt["users"]

        orgs = await g.organization.get()
        org = orgs.value[0]
        assert org.display_name == tt["name"]
        assert [d.name for d in org.verified_domains if d.is_default] == [tt["domain"]]
        if tt["last_sync"] is None:
            assert org.on_premises_sync_enabled is None and org.on_premises_last_sync_date_time is None
        else:
            assert org.on_premises_sync_enabled is True
            assert _ts(org.on_premises_last_sync_date_time) == tt["last_sync"]

    async def run():
        for tt in _all_tenants(truth):
            await check(tt)

    asyncio.run(run())


def test_msgraph_sdk_users_count_without_consistency_level_is_refused(sim, truth):
    async def run():
        g = _graph(sim, truth["tenants"][0]["tenant_id"])
        with pytest.raises(ODataError) as e:
            await g.users.count.get()
        assert e.value.response_status_code == 400
        assert e.value.error.code == "Request_BadRequest"
        assert e.value.error.message == "$count is not currently supported."

    asyncio.run(run())


def test_msgraph_sdk_gdap_relationships_match_partner_center(sim, truth):
    async def run():
        g = _graph(sim, sim["partner_tenant"])
        rels_builder = g.tenant_relationships.delegated_admin_relationships
        rels, pages = await _all(rels_builder, await rels_builder.get())
        assert pages >= 3, "five per page"
        listed = {}
        for r in rels:
            # status and durations parse into the SDK's enum and timedelta.
            if r.status.value != "terminated":
                listed.setdefault(r.customer.tenant_id, []).append(r)
        assert any(r.status.value == "terminated" for r in rels)
        for tt in _all_tenants(truth):
            got = listed.pop(tt["tenant_id"], [])
            assert [
                (r.id, r.status.value, _ts(r.end_date_time), r.auto_extend_duration != datetime.timedelta(0))
                for r in got
            ] == [(g_["relationship_id"], g_["status"], g_["end"], g_["auto_extend"]) for g_ in tt["gdap"]]
            assert all(r.customer.display_name == tt["name"] for r in got)
            assert all(r.duration == datetime.timedelta(days=730) or r.status.value == "expired" for r in got)
        assert listed == {}, "every listed relationship belongs to a known tenant"
        legacy = [t for t in truth["tenants"] if not t["gdap"]]
        assert len(legacy) == 2

    asyncio.run(run())


def test_msgraph_sdk_reads_directory_subscriptions(sim, truth):
    """`companySubscription` through the SDK's models: `isTrial`, the
    `nextLifecycleDateTime` datetime, `totalLicenses`, `serviceStatus`."""

    async def run():
        trials = 0
        for tt in _all_tenants(truth):
            g = _graph(sim, tt["tenant_id"])
            subs, _ = await _all(g.directory.subscriptions, await g.directory.subscriptions.get())
            assert [
                (s.id, s.commerce_subscription_id, s.sku_part_number, s.status, s.is_trial, s.total_licenses, _ts(s.next_lifecycle_date_time))
                for s in subs
            ] == [
                (d["id"], d["commerce_subscription_id"], d["sku_part_number"], d["status"], d["trial"], d["total_licenses"], d["next_lifecycle"])
                for d in tt["directory_subscriptions"]
            ]
            assert all(s.service_status and s.owner_tenant_id == sim["partner_tenant"] for s in subs)
            trials += sum(1 for s in subs if s.is_trial)
        assert trials > 0

    asyncio.run(run())


def test_msgraph_sdk_reads_gdap_access_assignments(sim, truth):
    """`delegatedAdminAccessAssignment` through the SDK's typed models: the
    status enum, the security-group container and the roles, for every
    relationship, compared with the ground truth."""

    async def run():
        g = _graph(sim, sim["partner_tenant"])
        rels = g.tenant_relationships.delegated_admin_relationships
        # The relationships' own roles parse as unifiedRole models.
        listed, _ = await _all(rels, await rels.get())
        held = {r.id: [u.role_definition_id for u in r.access_details.unified_roles] for r in listed}
        seen = {"pending": 0, "none": 0, "global_admin": 0}
        for tt in _all_tenants(truth):
            for rel in tt["gdap"]:
                assert held[rel["relationship_id"]] == [r["id"] for r in rel["roles"]]
                one = rels.by_delegated_admin_relationship_id(rel["relationship_id"])
                builder = one.access_assignments
                items, _ = await _all(builder, await builder.get())
                assert [
                    (
                        a.id,
                        a.status.value,
                        a.access_container.access_container_type.value,
                        [r.role_definition_id for r in a.access_details.unified_roles],
                    )
                    for a in items
                ] == [(t["id"], t["status"], "securityGroup", t["roles"]) for t in rel["access_assignments"]]
                assert all(a.created_date_time and a.last_modified_date_time for a in items)
                seen["pending"] += any(t["status"] == "pending" for t in rel["access_assignments"])
                seen["none"] += rel["status"] == "active" and not rel["access_assignments"]
                seen["global_admin"] += rel["global_admin"]
        assert all(seen.values()), seen
        # An unknown relationship is an OData error the SDK raises.
        with pytest.raises(ODataError) as e:
            await rels.by_delegated_admin_relationship_id("nope").access_assignments.get()
        assert e.value.response_status_code == 404
        assert e.value.error.code == "NotFound"

    asyncio.run(run())


def test_msgraph_sdk_reads_the_sam_app_credentials_with_filter_and_select(sim, truth):
    async def run():
        g = _graph(sim, sim["partner_tenant"])
        params = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{sim['partner_client']}'",
            select=["appId", "passwordCredentials", "keyCredentials"],
        )
        apps = await g.applications.get(request_configuration=RequestConfiguration(query_parameters=params))
        assert len(apps.value) == 1
        app = apps.value[0]
        assert app.app_id == truth["partner_app"]["app_id"] == sim["partner_client"]
        got = [(str(c.key_id), "secret", _ts(c.end_date_time)) for c in app.password_credentials]
        got += [(str(c.key_id), "certificate", _ts(c.end_date_time)) for c in app.key_credentials]
        want = [(c["key_id"], c["kind"], c["end"]) for c in truth["partner_app"]["credentials"]]
        assert got == want
        soon = [c for c in app.password_credentials if _ts(c.end_date_time) - time.time() < 30 * 86400]
        assert len(soon) == 1

    asyncio.run(run())


def _rg(sim, tenant: str) -> ResourceGraphClient:
    return ResourceGraphClient(
        _credential(sim, tenant, ARM_SCOPE),
        base_url=sim["cfg"]["cloud"]["arm"],
        connection_verify=sim["ca"],
    )


def _query_all(client: ResourceGraphClient, query: str):
    rows, pages, token = [], 0, None
    while True:
        res = client.resources(
            QueryRequest(
                query=query,
                options=QueryRequestOptions(top=1000, skip_token=token, result_format="objectArray"),
            )
        )
        rows.extend(res.data)
        pages += 1
        assert res.count == len(res.data)
        assert res.result_truncated == "false"
        if not res.skip_token:
            assert res.total_records == len(rows)
            return rows, pages
        token = res.skip_token


def test_resource_graph_sdk_pages_the_builtin_query_to_the_ground_truth(sim, truth):
    paged_three_times = 0
    for tt in _all_tenants(truth):
        rows, pages = _query_all(_rg(sim, tt["tenant_id"]), BUILTIN_QUERY)
        paged_three_times += pages >= 3
        resources = [(r["subscriptionId"], r["type"], r["location"], r["value"]) for r in rows if r["kind"] == "resources"]
        health = [
            (r["subscriptionId"], r["type"], r["location"], r["state"], r["value"]) for r in rows if r["kind"] == "health"
        ]
        advisor = [(r["category"], r["impact"], r["value"]) for r in rows if r["kind"] == "advisor"]
        assert resources == [(x["subscription_id"], x["resource_type"], x["location"], x["count"]) for x in tt["resources"]]
        assert health == [
            (x["subscription_id"], x["resource_type"], x["location"], x["state"], x["count"]) for x in tt["health"]
        ]
        assert advisor == [(x["category"], x["impact"], x["count"]) for x in tt["advisor"]]
    assert paged_three_times > len(_all_tenants(truth)) // 2


def test_resource_graph_sdk_custom_subset_errors_and_throttling(sim, truth):
    tt = next(t for t in truth["tenants"] if t["resources"])
    client = _rg(sim, tt["tenant_id"])
    rows, _ = _query_all(client, "resources | summarize n = count() by subscriptionId")
    per_sub = {}
    for x in tt["resources"]:
        per_sub[x["subscription_id"]] = per_sub.get(x["subscription_id"], 0) + x["count"]
    assert {r["subscriptionId"]: r["n"] for r in rows} == per_sub

    with pytest.raises(HttpResponseError) as e:
        client.resources(QueryRequest(query="resources | project id, name"))
    assert e.value.status_code == 400
    assert e.value.error.code == "BadRequest"
    assert [d.code for d in e.value.error.details][:1] == ["InvalidQuery"]

    # One throttled answer: the SDK waits Retry-After and retries.
    _admin(sim, "POST", "/_sim/faults/arm/next", count=1, throttle=1)
    started = time.monotonic()
    res = client.resources(QueryRequest(query="resources | count"))
    assert time.monotonic() - started >= 0.9
    assert res.data == [{"Count": sum(per_sub.values())}]
