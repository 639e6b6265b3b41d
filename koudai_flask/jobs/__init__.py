"""Background work: the outbox dispatcher and relay, RQ wiring and the schedules."""
