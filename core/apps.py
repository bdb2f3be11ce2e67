from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from .permissions import sync_roles
    sync_roles()


def _ensure_schedules(sender, **kwargs):
    from .services.backups import backup_schedule_ensure
    from .services.jobs import jobs_schedule_ensure
    from .services.reminders import reminders_schedule_ensure
    jobs_schedule_ensure()
    backup_schedule_ensure()
    reminders_schedule_ensure()


def _student_search_index(sender, using="default", **kwargs):
    # SQLite: the FTS5 search table's triggers die with any table rebuild a later migration makes
    from django.db import connections
    from .sql.search import install_sqlite_search
    if connections[using].vendor == "sqlite":
        install_sqlite_search(connections[using])


def _sqlite_real_param_limit(sender, connection, **kwargs):
    # Django assumes SQLite's old 999-parameter limit and splits bulk writes into ~50-row statements;
    # this build allows far more, so batches (not rows) decide the number of queries.
    if connection.vendor == "sqlite":
        import sqlite3
        connection.features.max_query_params = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Clearance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import history  # noqa: F401  (connects the audit signal)
        from .logs import connect_task_signals
        connect_task_signals()                  # the request id goes into the tasks a request queues
        # Roles follow core/permissions.py after every migrate (the command does it on demand).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="core.sync_roles")
        # The schedules the system runs by (the jobs sweep, the nightly backup), after every migrate and flush.
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="core.ensure_schedules")
        post_migrate.connect(_student_search_index, sender=self, dispatch_uid="core.student_search_index")
        connection_created.connect(_sqlite_real_param_limit, dispatch_uid="core.sqlite_param_limit")
