import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearance_admin.settings")
application = get_asgi_application()

from .startup import require_secret_key  # noqa: E402

require_secret_key()
