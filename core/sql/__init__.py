"""Raw SQL that speed needs, behind named functions (CONVENTIONS.md "Size and shape"): services and
selectors call these and read as domain steps. The statement helpers for bulk writes are in
core/bulk_load.py, which these build on."""
