"""Metrics: sources (Streams REST, Prometheus, JMX) sampled in the background into one time-series store."""
