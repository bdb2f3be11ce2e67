"""/staff/ — see clearance_admin/sites.py."""
from .sites import staff_site as site  # noqa: F401
