"""Every operation in `/openapi.json`, called with inputs that schemathesis generates from the schema
(valid ones and, for each operation, ones that break it), as an admin API key and as a signed-in customer:
no input gets a 5xx. Bounded: a few examples per operation, no shrinking, so the run stays short.

The run has its own stack and demo org (the fixtures start them afresh for this test), so whatever the
generated admin calls change is gone when it ends.
"""

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.integration.conversations_kit import ADMIN, make_demo, start

# Examples per operation, per mode and per caller: 61 operations x 2 modes x 2 callers x 4 calls.
EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', 4))
# The inputs of a run are drawn afresh each time; a 5xx found is printed with its curl command, to repeat it.
SERVER_ERROR = 500


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    statuses: Counter = field(default_factory=Counter)


def fuzz_operation(operation, mode: GenerationMode, base_url: str, headers: dict[str, str],  # type: ignore[no-untyped-def]
                   path_parameters: dict[str, str], findings: Findings) -> None:
    fixed = {k: v for k, v in path_parameters.items() if "{" + k + "}" in operation.path}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(base_url=base_url, headers=headers, timeout=30, allow_redirects=False)
        findings.calls += 1
        findings.statuses[f"{case.method} {case.path} {response.status_code}"] += 1
        if response.status_code >= SERVER_ERROR:
            findings.failures.append(f"{response.status_code} {case.method} {case.path} ({mode.value}): "
                                     f"{response.text[:300]}\n  {case.as_curl_command(headers=headers)[:1500]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation with nothing to break (no parameters, no body) has no negative inputs.


def fuzz(schema_json: dict, base_url: str, callers: dict[str, dict[str, str]]) -> Findings:
    schema = schemathesis.openapi.from_dict(schema_json)
    findings = Findings()
    # Signing out ends the customer's session: that operation goes last.
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: (op.method.upper(), op.path) == ("DELETE", "/api/v1/session"))
    for headers in callers.values():
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(operation, mode, base_url, headers, {"portal": "demo"}, findings)
    return findings


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


@pytest.mark.timeout(170)
async def test_no_input_gets_a_server_error(demo) -> None:  # type: ignore[no-untyped-def]
    customer = await demo.customer("fuzz@example.com")
    await start(customer)  # something for the customer's lists to show
    cookie = "; ".join(f"{name}={value}" for name, value in customer.cookies.items())
    schema_json = (await demo.admin.get("/openapi.json")).json()
    # The customer first: the admin's calls may then turn off what the customer's session relies on.
    callers = {"customer": {"Cookie": cookie}, "admin API key": ADMIN}

    # schemathesis calls with `requests`, which blocks: off the event loop the gateway and services run on.
    findings = await asyncio.to_thread(fuzz, schema_json, demo.base_url, callers)
    await customer.aclose()
    print(sorted(findings.statuses.items()))
    assert findings.calls > 200, findings.calls
    assert not findings.failures, "\n".join(findings.failures)
