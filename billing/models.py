"""Credits as an append-only ledger with a cached, never-negative balance
(docs/architecture.md "Money").

Invariant: for every account, balance_monthly == sum(entry.monthly) and balance_purchased ==
sum(entry.purchased). Both are changed only by billing.services.ledger_apply and a render's hold
(billing.holds.credits_hold), each of which inserts the entry (unique idempotency key) and moves
the balance with a conditional UPDATE in one transaction.

The account also carries its plan-limit counters (jobs in flight, generations and free previews
today), moved by the same UPDATE as the hold and the settlement of each render (billing.holds).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.models import AppendOnlyModel

from . import plans


class CreditAccount(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_account"
    )
    plan = models.CharField(max_length=16, default=plans.FREE)
    balance_monthly = models.BigIntegerField(default=0)
    balance_purchased = models.BigIntegerField(default=0)
    # When the monthly credits (balance_monthly) expire; the expiry job writes them off then.
    monthly_expires_at = models.DateTimeField(null=True, blank=True)

    stripe_customer_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=32, blank=True)
    # Creation time of the newest Stripe event that set plan/subscription fields: older events
    # arriving late never overwrite newer state.
    plan_event_at = models.DateTimeField(null=True, blank=True)

    # Plan-limit counters, moved with the holds (billing.holds): renders holding credits that are
    # not finished, and renders / free previews made on `usage_day` (UTC; a new day starts at 0).
    in_flight = models.PositiveIntegerField(default=0)
    usage_day = models.DateField(null=True, blank=True)
    made_today = models.PositiveIntegerField(default=0)
    free_today = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_monthly__gte=0), name="credit_monthly_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(in_flight__gte=0, made_today__gte=0, free_today__gte=0),
                name="credit_counters_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(balance_purchased__gte=0), name="credit_purchased_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.plan} · {self.balance} credits"

    @property
    def balance(self) -> int:
        return self.balance_monthly + self.balance_purchased

    def monthly_ended(self, now=None) -> bool:
        """The period of the monthly credits is over (they are written off, or due to be)."""
        return self.monthly_expires_at is not None and self.monthly_expires_at <= (
            now or timezone.now()
        )

    @property
    def plan_info(self) -> plans.Plan:
        return plans.get_plan(self.plan)


class LedgerEntry(AppendOnlyModel):
    class Kind(models.TextChoices):
        GRANT_MONTHLY = "grant_monthly", "Monthly credits"
        PURCHASE = "purchase", "Credit purchase"
        HOLD = "hold", "Held for a render"
        CAPTURE = "capture", "Charged"
        RELEASE = "release", "Refunded"
        EXPIRE = "expire", "Expired"
        ADJUST = "adjust", "Adjustment by staff"

    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # amount == monthly + purchased: the signed movement of each bucket.
    amount = models.BigIntegerField()
    monthly = models.BigIntegerField(default=0)
    purchased = models.BigIntegerField(default=0)
    generation = models.ForeignKey(
        "generation.Generation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who made the movement, if any",
    )
    # For monthly parts: the end of the period those credits belong to.
    period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["account", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount=F("monthly") + F("purchased")), name="ledger_amount_is_sum"
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "grant_monthly",
                        "purchase",
                        "hold",
                        "capture",
                        "release",
                        "expire",
                        "adjust",
                    ]
                ),
                name="ledger_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.idempotency_key})"


class PlanChange(AppendOnlyModel):
    class Source(models.TextChoices):
        STAFF = "staff"
        STRIPE = "stripe"

    account = models.ForeignKey(
        CreditAccount, on_delete=models.CASCADE, related_name="plan_changes"
    )
    from_plan = models.CharField(max_length=16)
    to_plan = models.CharField(max_length=16)
    source = models.CharField(max_length=8, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.account}: {self.from_plan} → {self.to_plan} ({self.source})"


class StripeEvent(models.Model):
    """Every Stripe event id we processed; a replay finds its id here and does nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="When Stripe created the event")
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=200, blank=True)
    # What the customer paid, in the currency's smallest unit, on the event that granted the
    # credits it bought (a pack's Checkout Session, a plan's paid invoice); 0 on every other.
    # The staff dashboard's Stripe income.
    income_minor = models.PositiveBigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
