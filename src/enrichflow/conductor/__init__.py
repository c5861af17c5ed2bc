"""The conductor: moves states, never touches business data. Stateless; safe to run several."""
