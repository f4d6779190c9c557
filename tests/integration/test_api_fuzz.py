"""Every operation in `/openapi.json`, called with inputs that schemathesis generates from the schema (valid
ones, and ones that break it), as an admin API key and as a signed-in customer: no input gets a 5xx.

Bounded: `EXAMPLES` inputs per operation, mode and caller, no shrinking, no example database, so a run takes
well under two minutes. The inputs are drawn afresh on each run; a 5xx is reported with a curl command that
repeats it. The run has a stack and demo org of its own (this test's fixtures), so whatever the generated
admin calls change is gone when it ends.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.kit.conversations import ADMIN, make_demo, start

EXAMPLES = 5
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass
class Findings:
    server_errors: list[str] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # (caller, "METHOD /path") -> calls made


def fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str, caller: str,
                   headers: dict[str, str], known: dict[str, str], findings: Findings) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    # Valid inputs reach further with ids that exist; inputs that break the schema keep their own.
    fixed = {name: value for name, value in known.items() if "{" + name + "}" in operation.path} \
        if mode is GenerationMode.POSITIVE else {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30, allow_redirects=False)
        findings.calls[caller, label] += 1
        if response.status_code >= 500:
            findings.server_errors.append(
                f"{response.status_code} for {label} ({caller}, {mode.value}): {response.text[:300]}\n"
                f"  {case.as_curl_command(headers=headers)[:2000]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # An operation with nothing to break (no parameters, no body) has no negative inputs.


def fuzz(schema_json: dict, base_url: str, callers: dict[str, dict[str, str]],
         known: dict[str, str]) -> tuple[Findings, list[str]]:
    schema = schemathesis.openapi.from_dict(schema_json)
    # Signing out ends the customer's session: that operation goes last.
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: (op.method.upper(), op.path) == ("DELETE", "/api/v1/session"))
    findings = Findings()
    for caller, headers in callers.items():
        for operation in operations:
            for mode in MODES:
                fuzz_operation(operation, mode, base_url, caller, headers, known, findings)
    return findings, [f"{op.method.upper()} {op.path}" for op in operations]


@pytest.fixture
async def demo(settings, stack, gateway):  # type: ignore[no-untyped-def]
    demo = await make_demo(settings, gateway)
    yield demo
    await demo.admin.aclose()


@pytest.mark.timeout(170)
async def test_no_generated_input_gets_a_server_error(demo) -> None:  # type: ignore[no-untyped-def]
    customer: httpx.AsyncClient = await demo.customer("fuzz@example.com")
    conversation = await start(customer)  # something for the lists to show, and an id that exists
    cookie = "; ".join(f"{name}={value}" for name, value in customer.cookies.items())
    schema_json = (await demo.admin.get("/openapi.json")).json()
    # The customer first: the admin's calls may then turn off what the customer's session relies on.
    callers = {"customer": {"Cookie": cookie}, "admin API key": ADMIN}
    known = {"portal": "demo", "conversation_id": conversation["id"]}

    # schemathesis calls with `requests`, which blocks: off the event loop that the gateway and services run on.
    findings, operations = await asyncio.to_thread(fuzz, schema_json, demo.base_url, callers, known)
    await customer.aclose()
    assert findings.server_errors == [], "\n".join(findings.server_errors)
    assert len(operations) > 50
    assert [(caller, op) for caller in callers for op in operations if not findings.calls[caller, op]] == []
