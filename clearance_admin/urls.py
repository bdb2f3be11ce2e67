from django.conf import settings
from django.conf.urls.static import static
from django.urls import path

from core.views import health

from .superuser import site as superuser_site

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", superuser_site.urls),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
