"""Streamlit glue for the operations dashboard: settings, cached resources, charts.

Everything that touches Redis lives in memory_core; this package only decides what to
cache and how to draw it.
"""
