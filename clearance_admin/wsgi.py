import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearance_admin.settings")
application = get_wsgi_application()

from .startup import require_secret_key  # noqa: E402

require_secret_key()
