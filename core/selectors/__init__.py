"""Reads that are more than a filter: dashboards, reports, what a user may see."""
