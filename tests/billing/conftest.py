import fcntl
import tempfile
from pathlib import Path

import pytest

from billing import services
from billing.models import CreditAccount, LedgerEntry

LOCK_FILE = Path(tempfile.gettempdir()) / "promptreel-billing-thread-tests.lock"


def assert_ledger_consistent(account: CreditAccount) -> None:
    """The cached balance is the projection of the entries, and never negative."""
    account.refresh_from_db()
    monthly, purchased = services.ledger_totals(account)
    assert (account.balance_monthly, account.balance_purchased) == (monthly, purchased)
    assert account.balance_monthly >= 0 and account.balance_purchased >= 0
    keys = list(
        LedgerEntry.objects.filter(account=account).values_list("idempotency_key", flat=True)
    )
    assert len(keys) == len(set(keys))


def give_credits(user, amount: int, *, key: str | None = None) -> CreditAccount:
    account = services.account_for(user)
    services.credits_purchase(
        account=account, credits=amount, key=key or f"test:{user.pk}:{amount}", reason="test"
    )
    account.refresh_from_db()
    return account


@pytest.fixture
def one_thread_storm_at_a_time():
    """The 50-thread tests open ~50 database connections each; two xdist workers running them
    at once could pass PostgreSQL's max_connections (100), so they take turns."""
    with open(LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
