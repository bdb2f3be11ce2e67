"""/finance/ — see clearance_admin/sites.py."""
from .sites import finance_site as site  # noqa: F401
