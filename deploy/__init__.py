"""Deployment definitions (Modal); see docs/production.md."""
