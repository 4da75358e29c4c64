from django.db import models
from django.db.models import Q
from django.utils import timezone


class ProviderCircuit(models.Model):
    """Whether we send new jobs to a video backend (workflows.circuit).

    Closed: submit as usual. Open: the provider is locked or failing; queued jobs wait (their
    credits held, nothing charged), and one probe submission goes through every
    PROVIDER_PROBE_SECONDS to find out whether it is back.
    """

    class State(models.TextChoices):
        CLOSED = "closed", "Submitting"
        OPEN = "open", "Paused"

    backend = models.CharField(max_length=16, unique=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.CLOSED)
    reason = models.TextField(blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # Open: when the next probe may be sent.
    probe_at = models.DateTimeField(null=True, blank=True)
    # Infrastructure failures counted in the current window (closed state only).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_failures = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state="closed") | Q(probe_at__isnull=False, opened_at__isnull=False),
                name="provider_circuit_open_has_times",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.backend}: {self.get_state_display()}"
