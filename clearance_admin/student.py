"""/student/ — see clearance_admin/sites.py."""
from .sites import student_site as site  # noqa: F401
