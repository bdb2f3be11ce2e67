from django.apps import AppConfig


class ClearanceApiConfig(AppConfig):
    # nothing is imported at start-up: simplejwt reads SECRET_KEY on import, and commands that serve
    # nobody (makemigrations, migrate) run without one. The API key's security scheme
    # (clearance_api/schema.py) is loaded with DEFAULT_SCHEMA_CLASS, before any schema is made.
    name = "clearance_api"
    label = "clearance_api"
    verbose_name = "API"
