"""JetStream key-value buckets, created idempotently by whichever process needs them first."""

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

from services.runtime.nats import ensure_replicas, wait_for_leader


async def ensure_bucket(js: JetStreamContext, bucket: str, *, ttl_seconds: float, description: str = "",
                        replicas: int = 1) -> KeyValue:
    """The bucket, created with `replicas` copies (`Settings.resolved_nats_replicas`) if missing; an
    existing one is brought to that many copies. Raises `nats.js.errors.APIError` when the server
    cannot keep them (see `services.runtime.nats.ensure_stream`)."""
    config = KeyValueConfig(bucket=bucket, history=1, ttl=ttl_seconds, storage=StorageType.FILE,
                            description=description, replicas=replicas)
    try:
        bucket_made = await js.create_key_value(config)
        if replicas > 1:
            await wait_for_leader(js, f"KV_{bucket}")
        return bucket_made
    except BadRequestError:
        # Exists already (another replica made it, or an earlier version with fewer copies).
        await ensure_replicas(js, f"KV_{bucket}", replicas)
        return await js.key_value(bucket)
