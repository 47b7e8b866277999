"""Metrics, reports, plots and benchmarks (`nasnet_app.evaluate`)."""
