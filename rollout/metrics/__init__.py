"""Metrics adapters behind ``base.MetricsProvider``: Prometheus (batched, typed outcomes) and an
in-memory fake. They measure; they never judge."""
