"""gateway: the only HTTP edge. Authenticates, then calls services over NATS; no rules, no database."""
