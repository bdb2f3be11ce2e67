"""A student's own clearance (part 2). Filled in next."""
urlpatterns = []
