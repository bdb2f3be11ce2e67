"""/registry/ — see clearance_admin/sites.py."""
from .sites import registry_site as site  # noqa: F401
