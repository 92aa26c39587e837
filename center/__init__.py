"""The reference payment center: MQTT subscriber, idempotent ingest, queries."""
