"""Reads for the billing pages."""

from django.db.models import OuterRef, Q, Subquery, Sum

from .models import LedgerEntry


def statement_rows(account):
    """The account's statement, one row per render and one per other movement, newest first.

    A render's hold, capture or release are one row: its latest entry, with `net` the sum of
    all its entries (0 for a free preview or a refund) so nobody reads "Charged +0" twice.
    """
    of_same_render = LedgerEntry.objects.filter(
        account=account, generation_id=OuterRef("generation_id")
    )
    latest = of_same_render.order_by("-created_at", "-id").values("id")[:1]
    net = of_same_render.order_by().values("generation_id").annotate(t=Sum("amount")).values("t")
    return (
        LedgerEntry.objects.filter(account=account)
        .filter(Q(generation__isnull=True) | Q(id=Subquery(latest)))
        .annotate(net=Subquery(net))
        .select_related("generation")
    )
