"""Optional integrations with other frameworks and engines, each behind its own extra."""
