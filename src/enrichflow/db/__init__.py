"""The state store: models, engine set-up, migrations and every state query."""
