"""Use cases: each in one place, with its authorization, its transaction
and its follow-up signal. Transports (HTTP, CLI, UI) call these; none
imports the store."""
