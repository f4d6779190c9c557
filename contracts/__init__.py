"""What Portico's services share about each other: events, RPC messages, error codes, subjects.

Nothing else lives here. Consumers ignore unknown fields; a breaking change is a new
major version, which is a new subject.
"""
