"""conversations: customers' conversations on every channel, messages, reopen; the agent inbox."""
