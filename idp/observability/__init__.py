"""Observability: Prometheus metrics and the health probes (:mod:`.metrics`), and
log lines with request ids (:mod:`.logs`). Infrastructure every layer may use."""
