"""AsyncAPI documents are generated from the services' code, and the committed copies are current."""

import json
import subprocess
import sys
from pathlib import Path

from contracts.events import ConversationReopened, MessagePosted, UserRegistered

ROOT = Path(__file__).resolve().parents[2]


def generate(out: Path) -> dict[str, dict]:
    subprocess.run([sys.executable, "-m", "services.cli", "asyncapi", "--out", str(out)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_asyncapi_documents_the_events_with_their_fields(tmp_path):
    docs = generate(tmp_path)
    assert set(docs) == {"auth", "conversations", "notifications", "kb"}
    for service, event in (("auth", UserRegistered), ("conversations", MessagePosted),
                           ("conversations", ConversationReopened)):
        doc = docs[service]
        assert doc["asyncapi"].startswith("3.")
        addresses = {channel["address"] for channel in doc["channels"].values()}
        assert event.subject() in addresses
        schemas = doc["components"]["schemas"]
        payload = schemas[event.__name__]
        for field in event.model_fields:
            assert payload["properties"][field]["description"], (event.__name__, field)
        envelope = schemas[f"{event.__name__}V1"]
        assert {"id", "type", "version", "occurred_at", "org_id", "aggregate_id", "aggregate_version",
                "correlation_id", "causation_id", "data"} <= set(envelope["properties"])
    assert "rpc.auth.start_email_access" in {c["address"] for c in docs["auth"]["channels"].values()}


def test_committed_asyncapi_is_up_to_date(tmp_path):
    fresh = generate(tmp_path)
    committed = {p.stem: json.loads(p.read_text()) for p in (ROOT / "docs" / "asyncapi").glob("*.json")}
    assert committed == fresh, "run `portico asyncapi` and commit docs/asyncapi/"
