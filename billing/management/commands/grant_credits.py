from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing import plans, services
from billing.errors import LedgerError


class Command(BaseCommand):
    help = "Grant (or with a negative amount take away) credits, and optionally change the plan."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("amount", type=int)
        parser.add_argument("--reason", required=True, help="kept on the ledger entry")
        parser.add_argument("--monthly", action="store_true", help="monthly (expiring) credits")
        parser.add_argument("--plan", choices=list(plans.plans()), help="also move to this plan")
        parser.add_argument("--by", help="email of the staff member doing it")

    def handle(self, *args, **opts):
        users = get_user_model().objects
        user = users.filter(email__iexact=opts["email"]).first()
        if user is None:
            raise CommandError(f"No user {opts['email']}")
        actor = None
        if opts["by"]:
            actor = users.filter(email__iexact=opts["by"], is_staff=True).first()
            if actor is None:
                raise CommandError(f"No staff member {opts['by']}")
        if opts["plan"]:
            services.plan_change(
                account=services.account_for(user),
                plan=opts["plan"],
                source="staff",
                actor=actor,
                reason=opts["reason"],
            )
        if opts["amount"]:
            try:
                services.credits_adjust(
                    user=user,
                    amount=opts["amount"],
                    bucket="monthly" if opts["monthly"] else "purchased",
                    reason=opts["reason"],
                    actor=actor,
                )
            except (LedgerError, ValueError) as exc:
                raise CommandError(str(exc)) from None
        account = services.account_for(user)
        self.stdout.write(
            f"{user.email}: plan {account.plan}, {account.balance_monthly} monthly + "
            f"{account.balance_purchased} purchased = {account.balance} credits"
        )
