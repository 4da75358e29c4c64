"""Write paths for generations that people start: create, cancel and render in HD."""

import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from api import ratelimit
from api.models import ApiKey
from api.webhooks import generation_webhook_set
from billing import holds
from billing.hd import hd_available, hd_version
from core.audit import audit_record
from core.errors import InputError
from core.models import AuditAction
from creative import constraints as creative_constraints
from creative import reuse
from generation import catalogue, media
from generation.backends import ProviderError, get_backend
from generation.images import ImageRejected, clean_image
from generation.models import AT_PROVIDER, Generation, GenerationInput, State, Tier
from moderation.services import (
    TAKEN_DOWN_ERROR_CODE,
    output_is_taken_down,
    prompt_check,
    remake_of_taken_down,
    user_flag,
    user_is_suspended,
)

from .lifecycle import Actor, generation_move
from .pipeline import enqueue_submit, generation_poll
from .review import apply_decision

log = logging.getLogger(__name__)

SEED_LIMIT = 2**32
# Creates that find the account changed since their quote roll back and quote again; the last
# ones quote under the account lock (billing.holds).
HOLD_ATTEMPTS, LOCKED_ATTEMPTS = 4, 2


class TakenDownRemake(InputError):
    code = TAKEN_DOWN_ERROR_CODE
    http_status = 403

    def __init__(self):
        super().__init__(
            {
                "seed": "Moderators took down the video these inputs and seed make; "
                "it cannot be rendered again (in HD or otherwise)."
            }
        )


class DuplicateRequest(InputError):
    """The same request made a clip that exists or is on its way (creative.reuse): offered
    instead of a second charge, unless the caller forces a new render."""

    code = "duplicate"
    http_status = 409

    def __init__(self, existing: Generation):
        self.existing = existing
        when = "is being made now" if not existing.is_terminal else "exists already"
        super().__init__(
            {
                "request": f"You made this exact video before ({existing.pk}) and it {when}: "
                "open it, or send force: true to render it again (and pay again)."
            }
        )


class AccountSuspended(InputError):
    code = "account_suspended"
    http_status = 403

    def __init__(self):
        super().__init__(
            {"account": "This account is suspended and cannot start new videos. Contact support."}
        )


def generation_create(
    *,
    user,
    endpoint_id: str,
    inputs: Mapping[str, Any],
    images: Sequence[bytes | BinaryIO] = (),
    video: "media.InputVideo | None" = None,
    preset: str = "static",
    seed: int | None = None,
    tier: str = Tier.PREVIEW,
    rerender_of: Generation | None = None,
    api_key=None,
    suspension_checked: bool = False,
    webhook_url: str = "",
    webhook_events: Sequence[str] = (),
    request=None,
    constraints: str = "",
    offer_existing: bool = False,
) -> Generation:
    """Validate, price and record a generation, and queue it for submission.

    Everything that can refuse the request runs before the row exists, so a refusal leaves
    nothing behind. Raises InputError with per-field messages; billing's refusals
    (InsufficientCredits, PlanLimit) are InputErrors too. The price is held (or a free preview
    taken from today's allowance) in the transaction that inserts the row.

    suspension_checked: the caller has just checked user_is_suspended in this request (API key
    authentication does), so it is not asked twice. webhook_url / webhook_events: an API
    client's subscription, stored with the row so that even an event of the create itself (held,
    blocked) is announced. request: where the create came from, for the audit log.
    constraints: the built-in constraints' terms (creative.constraints) to add to the negative
    prompt, when the endpoint takes one; recorded on the row. offer_existing: refuse with
    DuplicateRequest when the same request by this user made a clip that is still there
    (creative.reuse) — the interfaces pass it unless the caller forces a new render.
    """
    if not suspension_checked and user_is_suspended(user):
        raise AccountSuspended()
    valid = catalogue.validate_input(
        endpoint_id, inputs, image_count=len(images), has_video=video is not None, preset=preset
    )
    applied_constraints = ""
    if constraints and "negative_prompt" in valid.endpoint.fields:
        applied_constraints = constraints
        valid.arguments["negative_prompt"] = creative_constraints.with_constraints(
            valid.arguments.get("negative_prompt", ""), constraints
        )
    if seed is None:
        seed = secrets.randbelow(SEED_LIMIT)
    elif not 0 <= seed < SEED_LIMIT:
        raise InputError({"seed": f"Must be a whole number from 0 to {SEED_LIMIT - 1}."})
    elif remake_of_taken_down(
        user=user, endpoint_id=valid.endpoint.id, prompt=valid.prompt, seed=seed
    ) or (rerender_of is not None and output_is_taken_down(rerender_of)):
        # A given seed remakes a video: never one that moderators took down.
        raise TakenDownRemake()
    # The same request made a clip already: offered before any limit or price is looked at
    # (its owner may have no credits left, and needs none to open it).
    digest = reuse.request_digest(
        endpoint_id=valid.endpoint.id,
        arguments={**valid.arguments, "seed": seed},
        preset=valid.preset,
        files=[_content_of(image) for image in images]
        + ([reuse.file_digest_bytes(video.path)] if video else []),
    )
    if offer_existing:
        existing = reuse.existing_clip(user=user, digest=digest)
        if existing is not None:
            raise DuplicateRequest(existing)
    try:
        price = catalogue.price_of(valid)
    except catalogue.PriceUnknown as exc:
        raise InputError(
            {"endpoint": f"{exc} This endpoint cannot be used until it is priced."}
        ) from None

    def quote(*, lock: bool = False) -> holds.Quote:
        return holds.credits_quote(
            user=user,
            resolution=valid.resolution,
            duration=valid.duration,
            list_credits=price.credits,
            hd_rerender=rerender_of is not None,
            lock=lock,
        )

    # Plan, limits, balance and the key's cap refuse before any costly work (images, remote
    # moderation); the hold checks them again, exactly.
    charge = quote()
    capped = api_key is not None and api_key.monthly_credit_cap is not None
    if capped:
        _check_key_cap(api_key, charge.credits)
    if valid.resolution == "1080p":
        tier = Tier.HD
    cleaned = []
    for index, image in enumerate(images):
        try:
            cleaned.append(
                clean_image(
                    image, max_bytes=settings.IMAGE_MAX_BYTES, max_pixels=settings.IMAGE_MAX_PIXELS
                )
            )
        except ImageRejected as exc:
            field = "image" if len(images) == 1 else f"images[{index}]"
            raise InputError({field: str(exc)}) from None
    # Before anything is charged or sent: allow, hold for a moderator, or block.
    decision = prompt_check(
        user=user,
        prompt=" ".join(filter(None, [valid.prompt, valid.arguments.get("negative_prompt")])),
        # The input video is judged by one of its frames.
        images=[image.content for image in cleaned] + ([video.poster] if video else []),
    )
    allowed = decision.action == "allow"

    now = timezone.now()
    generation = Generation(
        user=user,
        api_key=api_key,
        state=State.QUEUED if allowed else State.HELD,
        queued_at=now if allowed else None,
        # Due at once: the tracker submits it (enqueue_submit).
        next_check_at=now if allowed else None,
        endpoint_id=valid.endpoint.id,
        backend=settings.VIDEO_BACKEND,
        prompt=valid.prompt,
        preset=valid.preset,
        arguments={**valid.arguments, "seed": seed},
        seed=seed,
        resolution=valid.resolution,
        duration=valid.duration,
        aspect_ratio=valid.aspect_ratio or "",
        tier=tier,
        rerender_of=rerender_of,
        fal_price_usd=price.usd,
        request_digest=digest,
        constraints=applied_constraints,
    )
    stored = [
        default_storage.save(
            f"inputs/{user.pk}/{uuid.uuid4().hex}.{image.extension}", ContentFile(image.content)
        )
        for image in cleaned
    ]
    stored_video = None
    if video is not None:
        stored_video = media.save_file(
            f"inputs/{user.pk}/{uuid.uuid4().hex}.{video.extension}", video.path
        )
    try:
        charge = _insert_and_hold(
            generation=generation,
            charge=charge,
            requote=quote,
            key_to_lock=api_key if capped else None,
            inputs=list(zip(cleaned, stored, strict=True)),
            video=(video, stored_video) if video is not None else None,
            decision=decision,
            webhook=(webhook_url, webhook_events) if webhook_url else None,
            request=request,
        )
    except BaseException:
        for name in [*stored, *filter(None, [stored_video])]:
            default_storage.delete(name)  # nothing refers to them: the row was rolled back
        raise
    if not allowed:
        generation.refresh_from_db()
    _watch_for_bursts(user)
    log.info(
        "generation %s created: %s %s %ss %s credits",
        generation.pk,
        valid.endpoint.id,
        valid.resolution,
        valid.duration,
        charge.credits,
    )
    return generation


def _content_of(image: bytes | BinaryIO) -> bytes:
    """An input image's bytes as given (an upload is read and rewound for clean_image)."""
    if isinstance(image, bytes):
        return image
    image.seek(0)
    content = image.read()
    image.seek(0)
    return content


def _insert_and_hold(
    *,
    generation,
    charge: holds.Quote,
    requote,
    key_to_lock,
    inputs,
    decision,
    webhook,
    request,
    video=None,
) -> holds.Quote:
    """Insert the row and its inputs and hold its credits, in one transaction. When the account
    moved since the quote (HoldStale), roll back and quote again; the last attempts quote under
    the account lock, where only the clock (a new UTC day, the end of a monthly period) can
    still move it. Returns the quote that was held."""
    for attempt in range(1, HOLD_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                if key_to_lock is not None:
                    # The key's row lock, held to the commit, serialises a capped key's creates
                    # so that two cannot both slip under its cap. Taken before the account's
                    # in every attempt: one order, so two such creates cannot deadlock.
                    keys = ApiKey.objects.select_for_update(no_key=True)
                    keys.filter(pk=key_to_lock.pk).exists()
                if attempt > 1:
                    charge = requote(lock=attempt > HOLD_ATTEMPTS - LOCKED_ATTEMPTS)
                if key_to_lock is not None:
                    _check_key_cap(key_to_lock, charge.credits)
                # The price as charged: 0 for a free preview.
                generation.credit_cost = charge.credits
                generation.free_preview = charge.free_preview
                generation.save(force_insert=True)
                for position, (image, name) in enumerate(inputs):
                    GenerationInput.objects.create(
                        generation=generation,
                        position=position,
                        file=name,
                        content_type=image.content_type,
                        width=image.width,
                        height=image.height,
                    )
                if video is not None:
                    clip, name = video
                    GenerationInput.objects.create(
                        generation=generation,
                        kind=GenerationInput.Kind.VIDEO,
                        position=0,
                        file=name,
                        content_type=clip.content_type,
                        width=clip.info.width,
                        height=clip.info.height,
                    )
                # Held for a moderator: counted today, but no slot in flight while it waits.
                holds.credits_hold(
                    quote=charge, generation=generation, takes_slot=decision.action == "allow"
                )
                if webhook is not None:
                    url, events = webhook
                    generation_webhook_set(generation=generation, url=url, events=list(events))
                if decision.action == "allow":
                    transaction.on_commit(lambda: enqueue_submit(generation.pk))
                else:
                    # Held: waits for a moderator. Blocked: moved on at once, its hold released.
                    apply_decision(generation=generation, decision=decision, request=request)
            return charge
        except holds.HoldStale as exc:
            if attempt == HOLD_ATTEMPTS:
                raise RuntimeError(f"could not hold credits for {generation.user_id}") from exc
            log.info("create for user %s: %s; quoting again", generation.user_id, exc)
    raise AssertionError("unreachable")


class KeySpendCap(InputError):
    code = "key_spend_cap"
    http_status = 402

    def __init__(self, cap: int, spent: int, cost: int):
        super().__init__(
            {
                "api_key": f"This API key may spend {cap} credits a month; it has spent "
                f"{spent} and this render costs {cost}. Raise its cap on your API keys page "
                "or wait for next month."
            }
        )


def key_spend_this_month(api_key) -> int:
    """Credits this key's generations hold or spent this calendar month (refunds excluded)."""
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    refunded = [State.FAILED, State.CANCELED, State.BLOCKED]
    rows = Generation.objects.filter(api_key=api_key, created_at__gte=start)
    return rows.exclude(state__in=refunded).aggregate(total=Sum("credit_cost"))["total"] or 0


def _check_key_cap(api_key, cost: int) -> None:
    spent = key_spend_this_month(api_key)
    if spent + cost > api_key.monthly_credit_cap:
        raise KeySpendCap(api_key.monthly_credit_cap, spent, cost)


def generation_refusal_now(
    *, user, api_key=None, resolution: str, duration: int, list_credits: int
) -> InputError | None:
    """The account-state refusal a create of this shape would meet now (suspension, plan,
    jobs in flight, daily cap, balance, the key's monthly cap), or None: the checks
    generation_create makes before its hold, for the API's estimate. Writes nothing."""
    try:
        if user_is_suspended(user):
            raise AccountSuspended()
        charge = holds.credits_quote(
            user=user, resolution=resolution, duration=duration, list_credits=list_credits
        )
        if api_key is not None and api_key.monthly_credit_cap is not None:
            _check_key_cap(api_key, charge.credits)
    except InputError as exc:
        return exc
    return None


def _watch_for_bursts(user) -> None:
    """Many generations in one minute flag the account for a moderator (it is not refused:
    the rate and plan limits do that). Flagged once, by the request that crosses the limit:
    the rest of the burst would only repeat it (two queries each)."""
    verdict = ratelimit.hit(
        f"burst:{user.pk}", limit=settings.BURST_FLAG_PER_MINUTE, window_seconds=60
    )
    if verdict.first_refused:
        user_flag(
            user=user, reason=f"More than {settings.BURST_FLAG_PER_MINUTE} generations in a minute"
        )


def generation_cancel(*, generation: Generation, actor: Actor) -> str:
    """Cancel for its owner. Returns 'canceled', 'requested', 'finishing' or 'finished'.

    Before the provider has the job (held, queued, submitting) it is canceled here at once.
    At the provider, it is asked to stop: fal removes a queued request but only signals a
    running one, which may finish anyway (docs/architecture.md, "Cancel"). Its status right
    after says which: stopped, it is 'canceled'; still running, it is 'requested' and ends as
    the provider says (canceled and released, or finished and charged as usual). If the
    provider has finished it already, it is 'finishing'. A job that has ended is 'finished'.
    """
    reason = "Canceled by its owner"
    # Held apart from the rest: a held row holds no slot in flight (the lifecycle frees none).
    # Never a held output (rendered, paid for, waiting for a moderator): its credits stay held
    # until the moderator decides (workflows.review.output_hold).
    for early in ([State.HELD], [State.QUEUED, State.SUBMITTING]):
        if generation_move(
            generation_id=generation.pk,
            to=State.CANCELED,
            actor=actor,
            reason=reason,
            sources=early,
            where={"output": ""},
        ):
            return "canceled"
    generation.refresh_from_db()
    if generation.state in AT_PROVIDER:
        if _provider_asked_to_stop(generation):
            # Its status says at once whether it stopped; recorded as the tracker would, a
            # canceled answer ends it "Canceled by its owner" (pipeline).
            generation_poll(generation_id=generation.pk, actor=actor)
        generation.refresh_from_db()
        if generation.cancel_requested_at and generation.state == State.CANCELED:
            return "canceled"
        if generation.cancel_requested_at and generation.state in AT_PROVIDER:
            # Still running: the tracker asks again at once, to confirm the stop soon.
            Generation.objects.filter(pk=generation.pk, state__in=AT_PROVIDER).update(
                next_check_at=timezone.now()
            )
            return "requested"
    return "finished" if generation.is_terminal else "finishing"


def _provider_asked_to_stop(generation: Generation) -> bool:
    """Ask the provider to cancel the job; if it accepts, the row records when."""
    try:
        accepted = get_backend(generation.backend).cancel(generation)
    except ProviderError as exc:
        log.warning("cancel of %s failed at the provider: %s", generation.pk, exc)
        return False
    if accepted:
        Generation.objects.filter(
            pk=generation.pk,
            state__in=AT_PROVIDER,
            provider_request_id=generation.provider_request_id,
        ).update(cancel_requested_at=timezone.now())
    return accepted


# Arguments the catalogue fills in or we set ourselves, not user inputs.
NOT_HD_INPUTS = {"seed", "prompt", "resolution"}


def generation_render_hd(*, user, source: Generation) -> Generation:
    """'Render in HD': the preview's HD render, the one already made or under way (nothing
    charged again), or a new one at 1080p with the same prompt, image, seed and motion, paid in
    credits."""
    if source.user_id != user.pk:
        raise InputError({"generation": "Not your generation."})
    with transaction.atomic():
        # Two clicks on the same preview wait here one after the other, so the second finds the
        # first one's render (PostgreSQL; SQLite runs one write transaction at a time anyway).
        Generation.objects.select_for_update().filter(pk=source.pk).exists()
        existing = hd_version(source)
        if existing is not None:
            return existing
        if not hd_available(source):
            raise InputError({"generation": "Only a finished 720p preview can be rendered in HD."})
        return _render_hd(user=user, source=source)


def _render_hd(*, user, source: Generation) -> Generation:
    endpoint = catalogue.get_endpoint(source.endpoint_id)
    inputs = {
        name: value
        for name, value in source.arguments.items()
        if name in endpoint.fields and name not in NOT_HD_INPUTS and name != endpoint.media_field
    }
    if "prompt" in endpoint.fields and source.prompt:
        inputs["prompt"] = source.prompt
    inputs["resolution"] = "1080p"
    images = []
    for item in source.inputs.filter(kind="image").order_by("position"):
        with default_storage.open(item.file.name, "rb") as handle:
            images.append(handle.read())
    return generation_create(
        user=user,
        endpoint_id=source.endpoint_id,
        inputs=inputs,
        images=images,
        preset=source.preset,
        seed=source.seed,
        tier=Tier.HD,
        rerender_of=source,
        # The preview's negative prompt has them already (added once); recorded again.
        constraints=source.constraints,
    )


def generation_delete(*, generation: Generation, request=None) -> None:
    """Delete one's finished clip: its video, poster and input files go; the row stays, hidden
    from every list (visible_to), so the ledger, moderation and audit records keep their link
    (it keeps the file names too: a succeeded row must name its output, and no view serves a
    deleted row's files).
    A video still being made is canceled first (generation_cancel), not deleted."""
    if not generation.is_terminal:
        raise InputError({"generation": "This video is still being made: cancel it first."})
    inputs = GenerationInput.objects.filter(generation=generation)
    names = [generation.output.name, generation.poster.name]
    names += [name for name in inputs.values_list("file", flat=True)]
    with transaction.atomic():
        deleted = Generation.objects.filter(pk=generation.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), updated_at=timezone.now()
        )
        if not deleted:
            return  # deleted already (a second click)
        audit_record(
            actor=generation.user,
            action=AuditAction.GENERATION_DELETE,
            target=generation,
            request=request,
        )

    def remove_files():
        for name in filter(None, names):
            default_storage.delete(name)

    transaction.on_commit(remove_files)
