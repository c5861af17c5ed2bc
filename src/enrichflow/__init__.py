"""enrichflow: durable B2B data-enrichment pipelines with the database as the only source of truth."""

__version__ = "0.1.0"
