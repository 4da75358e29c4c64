from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import cache

from django.conf import settings
from django.db import connection
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.models import ApiKey, Scope
from api.webhooks import WebhookUrlRefused, check_target
from billing import holds, limits
from billing import services as billing
from core.errors import InputError
from core.safe_fetch import FetchRefused
from generation import catalogue, media
from generation.delivery import signed_url
from generation.media import fetch_image_url
from generation.models import Generation, State
from moderation.models import TakeDown
from workflows.batches import generation_create_composed
from workflows.generations import (
    DuplicateRequest,
    generation_cancel,
    key_spend_this_month,
)
from workflows.lifecycle import Actor

from . import creative
from .idempotency import idempotency_begin, idempotency_finish, request_fingerprint
from .parsers import BoundedJSONParser
from .problems import CONTENT_TYPE, Problem, problem_json
from .serializers import (
    GenerationSerializer,
    WebhookDeliverySerializer,
)
from .throttling import ApiRateThrottle


class ApiView(APIView):
    """Rate limits for everyone, anonymous callers and bad keys included; RateLimit headers."""

    def perform_authentication(self, request):
        try:
            super().perform_authentication(request)
        except exceptions.AuthenticationFailed:
            self._limit_anonymous(request)  # guessing keys costs the guesser's IP budget
            raise

    def permission_denied(self, request, message=None, code=None):
        # DRF checks permissions before throttles; without this, unauthenticated requests
        # would never be counted.
        if not request.successful_authenticator:
            self._limit_anonymous(request)
        super().permission_denied(request, message=message, code=code)

    def _limit_anonymous(self, request):
        throttle = ApiRateThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        verdict = getattr(request, "rate_limit", None)
        if verdict is not None:
            for name, value in verdict.headers("default").items():
                response.setdefault(name, value)
        return response


def output_urls(request):
    def build(generation: Generation) -> dict:
        video = signed_url(
            generation.output.name,
            content_type="video/mp4",
            filename=f"promptreel-{generation.pk}.mp4",
            generation_id=generation.pk,
        )
        poster = signed_url(
            generation.poster.name, content_type="image/jpeg", generation_id=generation.pk
        )
        return {
            "video_url": request.build_absolute_uri(video),
            "poster_url": request.build_absolute_uri(poster),
            "expires_in": settings.SIGNED_URL_TTL,
        }

    return build


def api_generations(user):
    """The user's generations with the columns the API renders, each with its take-down (if
    any) joined in the same query (cheaper to build and compile than an EXISTS annotation)."""
    return (
        Generation.objects.visible_to(user)
        .select_related("takedown")
        .only(*GenerationSerializer.columns_read, "takedown__id")
    )


@cache
def _one_generation_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    rows, takedowns = Generation._meta, TakeDown._meta
    columns = ", ".join(
        quote(rows.get_field(name).column) for name in GenerationSerializer.columns_read
    )
    table, pk = quote(rows.db_table), quote(rows.pk.column)
    # Only quoted identifiers from the models' _meta are interpolated; values are parameters.
    return (
        f"SELECT {columns}, EXISTS (SELECT 1 FROM {quote(takedowns.db_table)} "  # noqa: S608
        f"WHERE {quote(takedowns.get_field('generation').column)} = {table}.{pk}) "
        f"AS is_taken_down FROM {table} "
        f"WHERE {pk} = %s AND {quote(rows.get_field('user').column)} = %s"
        f" AND {quote(rows.get_field('deleted_at').column)} IS NULL"
    )


def api_generation(user, pk) -> Generation:
    """One of the user's generations as api_generations loads them, or Http404. Plain SQL:
    compiling the ORM's query took more CPU than the rest of a detail request did
    (benchmarks/api)."""
    sql = _one_generation_sql(connection.vendor)
    params = [Generation._meta.pk.get_db_prep_value(pk, connection), user.pk]
    for generation in Generation.objects.raw(sql, params):
        return generation
    raise Http404("No generation matches the given query.")


def _is_position(value: str) -> bool:
    try:
        moment = parse_datetime(value)
        if moment is not None and timezone.is_aware(moment):
            moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return moment is not None


def refusal(exc: InputError) -> Problem:
    """generation_create's refusals → problem details with their stable codes.

    Billing's and suspension refusals are InputErrors with a `code` and an `http_status`.
    """
    code = getattr(exc, "code", "invalid_input")
    if code == "invalid_input":
        detail = "Some fields are invalid: " + ", ".join(exc.errors) + "."
    else:
        detail = " ".join(exc.errors.values())
    extra = {"allowed_by": exc.allowed_by} if getattr(exc, "allowed_by", None) else {}
    return Problem(
        status_code=getattr(exc, "http_status", 400),
        code=code,
        detail=detail,
        errors=exc.errors,
        **extra,
    )


def _bad_parameter(name: str, message: str) -> Problem:
    return Problem(
        status_code=400,
        code="invalid_input",
        detail=f"{name}: {message}",
        errors={name: message},
    )


def query_datetime(params, name: str) -> datetime | None:
    """An ISO 8601 query parameter as an aware UTC datetime, None if absent, else a 400.

    A moment too early or too late to convert to UTC (year 1 with a negative offset, year
    9999 with a positive one: OverflowError, a 500 on PostgreSQL before) is clamped to the
    earliest or latest UTC moment: every generation is after or before it all the same.
    """
    if name not in params:
        return None
    try:
        moment = parse_datetime(params[name])
    except ValueError:  # well-formed but impossible, e.g. month 13
        moment = None
    if moment is None:
        raise _bad_parameter(name, "Use ISO 8601, e.g. 2026-11-24T08:00:00Z.")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year < 5000 else datetime.max
        return edge.replace(tzinfo=UTC)


class GenerationPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 20
    max_page_size = 100
    page_size_query_param = "limit"

    def get_page_size(self, request):
        # DRF ignores a bad limit silently; a client asking for 0 or "abc" has a bug to fix.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise _bad_parameter(
                self.page_size_query_param,
                f"Use a whole number from 1 to {self.max_page_size}.",
            )
        return int(raw)

    def decode_cursor(self, request):
        """DRF's decoding, with a malformed cursor a 400 (DRF: 404) and its position checked:
        a forged `p=` that is not a date-time would reach the query and fail there (a 500)."""
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = None
            valid = False
        else:
            valid = cursor is None or cursor.position is None or _is_position(cursor.position)
        if not valid:
            raise _bad_parameter(
                self.cursor_query_param, "Not a cursor from a previous page; use next or previous."
            )
        return cursor


class GenerationListCreate(ApiView, generics.ListAPIView):
    """List your generations (newest first), or create one."""

    serializer_class = GenerationSerializer
    pagination_class = GenerationPagination
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]
    required_scopes = {"GET": Scope.GENERATIONS_READ, "POST": Scope.GENERATIONS_WRITE}

    def get_queryset(self):
        queryset = api_generations(self.request.user)
        params = self.request.query_params
        if "state" in params:  # present but empty is a mistake too
            states = params["state"].split(",")
            unknown = set(states) - set(State.values)
            if unknown:
                raise Problem(
                    status_code=400,
                    code="invalid_input",
                    detail=f"Unknown state {sorted(unknown)[0]!r}.",
                    errors={"state": f"Use any of: {', '.join(State.values)}."},
                )
            queryset = queryset.filter(state__in=states)
        if params.get("endpoint"):
            if len(params["endpoint"]) > 200 or "\x00" in params["endpoint"]:
                raise _bad_parameter("endpoint", "Use an endpoint id from GET /models.")
            queryset = queryset.filter(endpoint_id=params["endpoint"])
        for name, lookup in (
            ("created_after", "created_at__gte"),
            ("created_before", "created_at__lt"),
        ):
            moment = query_datetime(params, name)
            if moment is not None:
                queryset = queryset.filter(**{lookup: moment})
        return queryset

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "output_urls": output_urls(self.request)}

    @extend_schema(
        request=creative.CreativeCreateSerializer,
        responses={201: GenerationSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            replay = idempotency_begin(
                user=request.user, key=key, fingerprint=request_fingerprint(request)
            )
            if replay is not None:
                return Response(
                    replay.response_body,
                    status=replay.response_status,
                    headers={"Idempotent-Replayed": "true"},
                    # A replayed refusal is the same problem document as the first answer.
                    content_type=CONTENT_TYPE if replay.response_status >= 400 else None,
                )
        try:
            response = self._create(request)
        except Problem as problem:
            if key is not None:
                from .problems import exception_handler

                answer = exception_handler(problem, {})
                idempotency_finish(
                    user=request.user, key=key, status=answer.status_code, body=answer.data
                )
            raise
        except Exception:
            if key is not None:
                idempotency_finish(user=request.user, key=key, status=500, body=None)
            raise
        if key is not None:
            idempotency_finish(
                user=request.user, key=key, status=response.status_code, body=response.data
            )
        return response

    def _create(self, request) -> Response:
        serializer = creative.CreativeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("webhook_url"):
            try:
                check_target(data["webhook_url"])
            except WebhookUrlRefused as exc:
                raise Problem(
                    status_code=400,
                    code="invalid_input",
                    detail=str(exc),
                    errors={"webhook_url": str(exc)},
                ) from None
        endpoint, image_count = _endpoint_and_image_count(data)
        # Creative tools (issue 18, restapi/creative.py): template + slots, constraints,
        # variations, reuse of an identical clip.
        composed = creative.compose(
            user=request.user, serializer=serializer, endpoint=endpoint, image_count=image_count
        )
        endpoint = composed.endpoint
        has_video = bool(data.get("video") or data.get("video_url"))
        try:
            # Refuse bad input before spending time downloading images for it.
            catalogue.validate_input(
                endpoint,
                composed.inputs,
                image_count=image_count,
                has_video=has_video,
                preset=composed.preset,
            )
        except InputError as exc:
            raise refusal(exc) from None
        images = _images(data)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        with _video(data) as video:
            if composed.variants:
                return creative.create_batch(
                    request=request,
                    composed=composed,
                    images=images,
                    video=video,
                    api_key=api_key,
                    data=data,
                    context=self.get_serializer_context(),
                )
            try:
                generation = generation_create_composed(
                    template=composed.template,
                    slots=composed.slots,
                    user=request.user,
                    endpoint_id=endpoint,
                    inputs=composed.inputs,
                    images=images,
                    video=video,
                    preset=composed.preset,
                    seed=data.get("seed"),
                    api_key=api_key,
                    # apikey_authenticate refused suspended accounts a moment ago.
                    suspension_checked=api_key is not None,
                    webhook_url=data.get("webhook_url") or "",
                    webhook_events=data.get("webhook_events", []),
                    request=request,
                    constraints=composed.constraints,
                    offer_existing=not composed.force,
                )
            except DuplicateRequest as exc:
                raise creative.duplicate_problem(exc, request) from None
            except InputError as exc:
                raise refusal(exc) from None
        body = GenerationSerializer(generation, context=self.get_serializer_context()).data
        return Response(
            body,
            status=status.HTTP_201_CREATED,
            headers={
                "Location": request.build_absolute_uri(f"/api/v1/generations/{generation.pk}")
            },
        )


def _endpoint_and_image_count(data, *, declared: int = 0) -> tuple[str, int]:
    """How many images the request brings, and the endpoint (by default, text or image)."""
    count = declared or (
        1
        if data.get("image") or data.get("image_url")
        else len(data.get("images") or data.get("image_urls") or [])
    )
    endpoint = data.get("endpoint") or (
        catalogue.DEFAULT_IMAGE_ENDPOINT if count else catalogue.DEFAULT_TEXT_ENDPOINT
    )
    return endpoint, count


@contextmanager
def _video(data) -> Iterator[media.InputVideo | None]:
    """The request's input video (upload or link), spooled and probed, or None."""
    if not (data.get("video") or data.get("video_url")):
        yield None
        return
    field = "video" if data.get("video") else "video_url"
    with ExitStack() as stack:
        try:
            video = stack.enter_context(
                media.input_video(upload=data.get("video"), url=data.get("video_url"))
            )
        except (FetchRefused, media.VideoRejected) as exc:
            raise Problem(
                status_code=400, code="invalid_input", detail=str(exc), errors={field: str(exc)}
            ) from None
        yield video


def _images(data) -> list:
    if data.get("images"):
        return list(data["images"])
    if data.get("image"):
        return [data["image"]]
    urls = [data["image_url"]] if data.get("image_url") else data.get("image_urls", [])
    images = []
    for index, url in enumerate(urls):
        try:
            images.append(fetch_image_url(url))
        except FetchRefused as exc:
            field = "image_url" if data.get("image_url") else f"image_urls[{index}]"
            raise Problem(
                status_code=400, code="invalid_input", detail=str(exc), errors={field: str(exc)}
            ) from None
    return images


class GenerationDetail(ApiView):
    required_scopes = {"GET": Scope.GENERATIONS_READ}

    @extend_schema(responses=GenerationSerializer)
    def get(self, request, pk):
        generation = api_generation(request.user, pk)
        context = {"request": request, "output_urls": output_urls(request)}
        return Response(GenerationSerializer(generation, context=context).data)


class GenerationCancel(ApiView):
    required_scopes = {"POST": Scope.GENERATIONS_WRITE}

    @extend_schema(request=None, responses=GenerationSerializer)
    def post(self, request, pk):
        generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
        outcome = generation_cancel(generation=generation, actor=Actor.of_request(request))
        generation.refresh_from_db()
        context = {"request": request, "output_urls": output_urls(request)}
        body = {**GenerationSerializer(generation, context=context).data, "cancel": outcome}
        return Response(
            body, status=status.HTTP_200_OK if outcome != "finishing" else status.HTTP_202_ACCEPTED
        )


class GenerationWebhooks(ApiView):
    """The delivery log of a generation's webhooks."""

    required_scopes = {"GET": Scope.GENERATIONS_READ}

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def get(self, request, pk):
        generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
        deliveries = generation.webhook_deliveries.all()
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)


class Models(ApiView):
    required_scopes = {}

    @extend_schema(responses={200: dict})
    def get(self, request):
        rows = []
        for endpoint in catalogue.endpoints():
            prices = []
            for resolution in endpoint.choices("resolution") or [
                endpoint.default("resolution") or "720p"
            ]:
                for duration in endpoint.choices("duration") or [endpoint.default("duration") or 5]:
                    try:
                        usd, confirmed = catalogue.fal_price_usd(endpoint, resolution, duration)
                    except catalogue.PriceUnknown:
                        continue
                    prices.append(
                        {
                            "resolution": resolution,
                            "duration": duration,
                            "credits": catalogue.credits_for_usd(usd),
                            "confirmed": confirmed,
                        }
                    )
            rows.append(
                {
                    "id": endpoint.id,
                    "title": endpoint.title,
                    "kind": endpoint.kind,
                    "images": {"min": endpoint.media_min, "max": endpoint.media_max},
                    "video": endpoint.video_field is not None,
                    "fields": endpoint.fields,
                    "prices": prices,
                    "price_rule": endpoint.price.rule,
                    "price_source": endpoint.price.source,
                }
            )
        return Response({"models": rows})


class Estimate(ApiView):
    """What a create with this body would hold, and whether the plan and balance allow it."""

    required_scopes = {"POST": Scope.GENERATIONS_READ}

    @extend_schema(request=creative.CreativeEstimateSerializer, responses={200: dict})
    def post(self, request):
        serializer = creative.CreativeEstimateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, image_count = _endpoint_and_image_count(data, declared=data["image_count"])
        # Creative tools (issue 18): the template's prompt and settings, constraints.
        composed = creative.compose(
            user=request.user, serializer=serializer, endpoint=endpoint, image_count=image_count
        )
        has_video = bool(data.get("video") or data.get("video_url"))
        try:
            valid = catalogue.validate_input(
                composed.endpoint,
                composed.inputs,
                image_count=image_count,
                has_video=has_video,
                preset=composed.preset,
            )
            price = catalogue.price_of(valid)
            estimate = holds.estimate(
                user=request.user,
                resolution=valid.resolution,
                duration=valid.duration,
                list_credits=price.credits,
            )
            extras = creative.estimate_extras(
                user=request.user,
                composed=composed,
                valid=valid,
                image_count=image_count,
                has_video=has_video,
            )
        except catalogue.PriceUnknown as exc:
            raise refusal(InputError({"endpoint": str(exc)})) from None
        except InputError as exc:
            raise refusal(exc) from None
        return Response(
            {
                "endpoint": valid.endpoint.id,
                "resolution": valid.resolution,
                "duration": valid.duration,
                "price_confirmed": price.confirmed,
                **estimate,
                **extras,
            }
        )


class Account(ApiView):
    """Balance, plan, limits and today's usage; the key's own cap when called with a key."""

    required_scopes = {"GET": Scope.ACCOUNT_READ}

    @extend_schema(responses={200: dict})
    def get(self, request):
        account = billing.account_for(request.user)
        plan = account.plan_info
        made_today, _ = limits.usage_today(account)
        body = {
            "email": request.user.email,
            "plan": {
                "code": plan.code,
                "name": plan.name,
                "max_resolution": plan.max_resolution,
                "max_duration": plan.max_duration,
                "max_in_flight": plan.max_in_flight,
                "daily_free_previews": plan.daily_free_previews,
            },
            "balance": {
                "monthly": account.balance_monthly,
                "purchased": account.balance_purchased,
                "monthly_expires_at": account.monthly_expires_at,
            },
            "usage_today": {
                "generations": made_today,
                "free_previews_left": limits.allowance_left(account),
                "in_flight": account.in_flight,
            },
            "rate_limit_per_minute": settings.API_REQUESTS_PER_MINUTE,
        }
        if isinstance(request.auth, ApiKey):
            body["key"] = {
                "prefix": request.auth.prefix,
                "scopes": request.auth.scopes,
                "monthly_credit_cap": request.auth.monthly_credit_cap,
                "spent_this_month": key_spend_this_month(request.auth),
            }
        return Response(body)


@csrf_exempt  # API clients send no CSRF token; a POST to a wrong path is a 404 too
def unknown_path(request, *args, **kwargs):
    return problem_json(404, "not_found", f"No API operation at {request.path}; see /api/docs/.")
