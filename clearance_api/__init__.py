"""/api/: the REST API (Django REST Framework) for students' apps and offices' systems. A thin layer:
every write calls a service of core/services, every read a selector of core/selectors, every
permission comes from core/permissions.py (through clearance_api/permissions.py)."""
