"""The small kit every Portico process shares: NATS, streams, outbox, inbox, RPC, DB, settings, logs.

No business rules live here.
"""
