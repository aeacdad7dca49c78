"""The seed 004 portal: a tenant-landlord maintenance app built on Tidings'
public APIs (the node, the SDK, the outbox, the state machine), embedding
the hub on one origin. See ``README.md`` beside this file."""
