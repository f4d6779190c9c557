"""JetStream key-value buckets, created idempotently by whichever process needs them first."""

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue


async def ensure_bucket(js: JetStreamContext, bucket: str, *, ttl_seconds: float, description: str = "") -> KeyValue:
    config = KeyValueConfig(bucket=bucket, history=1, ttl=ttl_seconds, storage=StorageType.FILE,
                            description=description)
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        return await js.key_value(bucket)  # exists already (another replica made it)
