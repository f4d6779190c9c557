"""Every request/reply operation is declared once (`contracts.operations`), served by exactly one
service, and every call in the code names a declared operation."""

import ast
from pathlib import Path

from contracts import operations
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def served(tmp_path: Path) -> dict[str, list[str]]:
    from services.auth.app import build as auth
    from services.conversations.app import build as conversations
    from services.kb.app import build as kb
    from services.notifications.app import build as notifications

    settings = Settings(data_dir=tmp_path, env="dev")
    by_subject: dict[str, list[str]] = {}
    for build in (auth, conversations, kb, notifications):
        service = build(settings)
        for operation in service.served.values():
            by_subject.setdefault(operation.subject, []).append(service.name)
    return by_subject


def test_every_declared_operation_is_served_by_exactly_one_service(tmp_path):
    by_subject = served(tmp_path)
    declared = {operation.subject for operation in operations.OPERATIONS}
    assert set(by_subject) == declared
    assert {subject: names for subject, names in by_subject.items() if len(names) != 1} == {}
    assert len(declared) == len(operations.OPERATIONS)  # no operation declared twice


def test_every_call_in_the_code_names_a_declared_operation():
    calls = []
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("tests/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
                    and node.args and not isinstance(node.args[0], ast.Starred)):
                first = ast.unparse(node.args[0])
                if first.startswith("operations.") or first in ("operation",):
                    calls.append(first)
                elif isinstance(node.args[0], ast.Constant):
                    raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} calls {first} by name")
    names = {f"operations.{o.service}.{o.name}" for o in operations.OPERATIONS}
    unknown = [c for c in calls if c.startswith("operations.") and "(" not in c and c not in names]
    assert calls and unknown == []


def test_a_request_of_the_wrong_type_is_refused_before_it_is_sent():
    import asyncio

    import pytest

    from contracts.rpc import Ping
    from services.runtime.rpc import RpcClient

    with pytest.raises(TypeError):
        asyncio.run(RpcClient(broker=None).call(operations.auth.sso_login, Ping()))  # type: ignore[arg-type]
