"""Periodic django-q2 jobs, kept in code and written to the Schedule table after each migrate.

Each app lists its own in a `schedules` module's SCHEDULES tuple, named by its AppConfig's
`schedules_module`; `ensure_schedules` makes the table match, so a deployment never depends on
someone creating schedules by hand.
"""

from django.apps import apps


def ensure_schedules(**kwargs) -> None:
    from django_q.models import Schedule  # django_q's models need the app registry ready

    for config in apps.get_app_configs():
        module = getattr(config, "schedules_module", None)
        if module is None:
            continue
        for name, func, minutes in __import__(module, fromlist=["SCHEDULES"]).SCHEDULES:
            Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
