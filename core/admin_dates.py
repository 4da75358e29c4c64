"""The admin's date hierarchy, with any year/month/day in the query string refused cleanly.

Django validates the date it builds from `created_at__year=…` but not the end of the range
it adds to it: year 9999 overflows `date.replace(year=10000)` / `+ timedelta` and the change
list answered 500. Here any such failure becomes IncorrectLookupParameters, which the admin
turns into its usual redirect to `?e=1` ("invalid lookup parameters").
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class BoundedDateChangeList(ChangeList):
    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class BoundedDateHierarchyAdmin(admin.ModelAdmin):
    """A ModelAdmin whose date_hierarchy survives any date in the URL."""

    def get_changelist(self, request, **kwargs):
        return BoundedDateChangeList
