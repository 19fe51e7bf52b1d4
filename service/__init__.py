"""civility's moderation service: HTTP API, Redis store, policy, worker and CLI."""
