"""Automation: rules turn events into durable jobs; workers run their actions.

See ``docs/ARCHITECTURE.md`` ("Automation") for the path of a job.
"""
