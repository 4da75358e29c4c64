import functools
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import cache

from django.conf import settings
from django.db import connection
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions, generics, renderers, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.documents import output_links
from api.models import ApiKey, Scope
from api.webhooks import (
    WebhookUrlRefused,
    check_target,
    webhook_redeliver,
    webhook_send_test,
)
from billing import holds, limits
from billing import services as billing
from billing.errors import UsageLimit
from core.errors import InputError
from core.safe_fetch import FetchRefused
from generation import catalogue, media
from generation.images import ImageRejected, clean_image
from generation.media import fetch_image_url
from generation.models import Generation, State
from moderation.models import TakeDown
from workflows.batches import generation_create_composed
from workflows.generations import (
    DuplicateRequest,
    generation_cancel,
    generation_refusal_now,
    key_spend_this_month,
)
from workflows.lifecycle import Actor

from . import creative, waiting
from .authentication import ApiKeyAuthentication
from .idempotency import idempotency_begin, idempotency_finish, request_fingerprint
from .parsers import BoundedJSONParser
from .problems import CONTENT_TYPE, Problem, exception_handler
from .serializers import (
    AccountSerializer,
    EstimateJsonSerializer,
    EstimateResultSerializer,
    EstimateSerializer,
    EstimateUploadSerializer,
    GenerationCancelSerializer,
    GenerationCreateJsonSerializer,
    GenerationCreateSerializer,
    GenerationCreateUploadSerializer,
    GenerationSerializer,
    ModelListSerializer,
    WebhookDeliverySerializer,
    WebhookTestResultSerializer,
    WebhookTestSerializer,
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
        if verdict is None:
            # Refused before the throttles ran (406 from content negotiation): it counts
            # all the same, and says so in the headers like every other answer.
            ApiRateThrottle().allow_request(request, self)
            verdict = getattr(request, "rate_limit", None)
        if verdict is not None:
            for name, value in verdict.headers("default").items():
                response.setdefault(name, value)
        return response


def output_urls(request):
    """Signed output links made absolute for this request's host."""
    return functools.partial(output_links, absolute=request.build_absolute_uri)


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
    headers = {}
    if isinstance(exc, UsageLimit):  # lifted by time: say when to retry and which limit
        extra.update(limit=exc.limit, allowed=exc.allowed)
        headers["Retry-After"] = str(exc.retry_after)
    return Problem(
        status_code=getattr(exc, "http_status", 400),
        code=code,
        detail=detail,
        errors=exc.errors,
        headers=headers,
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

    def get_paginated_response_schema(self, schema):
        # DRF's has an example that is not a URI (a stray quote) and marks the links optional;
        # they are always present, null on the first or last page.
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "the next page; null on the last"},
                "previous": {**link, "description": "the previous page; null on the first"},
                "results": schema,
            },
        }

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


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Makes a retry safe (draft-ietf-httpapi-idempotency-key-header): the same key "
    "with the same body answers the first response again, Location included, with "
    "`Idempotent-Replayed: true`. Only final answers are kept (created, or a refusal of the "
    "request itself); a 402, 429 or 5xx releases the key. Kept 24 hours.",
)
PREFER = OpenApiParameter(
    "Prefer",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="`wait=N` (1-60): hold the answer until the generation ends or N seconds "
    "pass (RFC 7240); the answer says `Preference-Applied: wait=N`. At most "
    "API_MAX_WAITS_PER_KEY waits at once per key; more answer at once.",
)


@extend_schema_view(
    get=extend_schema(
        operation_id="generations_list",
        summary="List generations",
        description="Your generations, newest first, a page at a time: follow `next` (a "
        "cursor link) until it is null. Filters combine.",
        tags=["generations"],
    )
)
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
        operation_id="generations_create",
        summary="Create a generation",
        description="Start a video from a prompt (and images or a video, by https link in "
        "JSON or uploaded as multipart). Credits are held at once and settled when it ends: "
        "captured on success, released otherwise. Answers 201 with the generation and its "
        "Location (with `variations`: the batch and its renders); poll it, wait with "
        "`Prefer: wait=N`, stream its events, or ask for a webhook.",
        tags=["generations"],
        request={
            "application/json": GenerationCreateJsonSerializer,
            "multipart/form-data": GenerationCreateUploadSerializer,
        },
        responses={
            201: PolymorphicProxySerializer(
                component_name="GenerationCreated",
                serializers=[GenerationSerializer, creative.BatchCreatedSerializer],
                resource_type_field_name=None,
                many=False,
            )
        },
        parameters=[IDEMPOTENCY_KEY, PREFER],
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
                    headers={**replay.response_headers, "Idempotent-Replayed": "true"},
                    # A replayed refusal is the same problem document as the first answer.
                    content_type=CONTENT_TYPE if replay.response_status >= 400 else None,
                )
        try:
            response = self._create(request)
        except exceptions.APIException as refused:
            if key is not None:
                answer = exception_handler(refused, {})
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
                user=request.user,
                key=key,
                status=response.status_code,
                body=response.data,
                headers=response.headers,
            )
        return response

    def _create(self, request) -> Response:
        serializer = GenerationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        composed, _, _ = request_checks(serializer, user=request.user)
        endpoint = composed.endpoint
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
        generation, waited_headers = waited(request, generation)
        body = GenerationSerializer(generation, context=self.get_serializer_context()).data
        return Response(
            body,
            status=status.HTTP_201_CREATED,
            headers={
                **waited_headers,
                "Location": request.build_absolute_uri(f"/api/v1/generations/{generation.pk}"),
            },
        )


def request_checks(serializer, *, user, declared_images: int = 0):
    """The checks of a create body that need no download, shared by create and estimate so
    that an estimate never says yes where create says no: the webhook target, the creative
    tools' composition (template + slots, constraints, variations: restapi/creative.py), then
    the catalogue's (endpoint, fields, image count, video). Returns (composed, validated input,
    image count). Raises Problem."""
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
    endpoint, image_count = _endpoint_and_image_count(data, declared=declared_images)
    composed = creative.compose(
        user=user, serializer=serializer, endpoint=endpoint, image_count=image_count
    )
    try:
        # Refuse bad input before spending time downloading images for it.
        valid = catalogue.validate_input(
            composed.endpoint,
            composed.inputs,
            image_count=image_count,
            has_video=bool(data.get("video") or data.get("video_url")),
            preset=composed.preset,
        )
    except InputError as exc:
        raise refusal(exc) from None
    return composed, valid, image_count


def uploads_check(data) -> None:
    """Estimate's check of uploaded images, the one create makes (generation_create's
    clean_image), without storing anything: a file that is not an image is refused by both."""
    uploads = data.get("images") or ([data["image"]] if data.get("image") else [])
    for index, upload in enumerate(uploads):
        try:
            clean_image(
                upload, max_bytes=settings.IMAGE_MAX_BYTES, max_pixels=settings.IMAGE_MAX_PIXELS
            )
        except ImageRejected as exc:
            field = "image" if len(uploads) == 1 else f"images[{index}]"
            raise Problem(
                status_code=400, code="invalid_input", detail=str(exc), errors={field: str(exc)}
            ) from None
        finally:
            upload.seek(0)


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

    @extend_schema(
        operation_id="generations_retrieve",
        summary="Get a generation",
        description="One generation: its state, timings, and when it succeeded, signed links "
        "to the video and poster that expire (`output.expires_at`); fetch it again for fresh "
        "ones. Answers an ETag; send it back as If-None-Match to get 304 while nothing changed.",
        tags=["generations"],
        parameters=[PREFER],
        responses={200: GenerationSerializer, 304: OpenApiResponse(description="Not modified")},
    )
    def get(self, request, pk):
        generation, headers = waited(request, api_generation(request.user, pk))
        context = {"request": request, "output_urls": output_urls(request)}
        body = GenerationSerializer(generation, context=context).data
        tag = waiting.matching_tag(request, body)
        if tag is not None:
            # The client's tag, not a new one: its copy's links keep their own expiry.
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={**headers, "ETag": tag})
        return Response(body, headers={**headers, "ETag": waiting.etag(body)})


def waited(request, generation: Generation) -> tuple[Generation, dict]:
    """`Prefer: wait=N`: the generation once it has ended or N seconds passed, if the caller
    has a wait slot free (restapi/waiting.py); else at once. With the header to answer."""
    seconds = waiting.preferred_wait(request)
    if seconds is None:
        return generation, {}
    if generation.is_terminal:
        return generation, {"Preference-Applied": f"wait={seconds}"}
    with waiting.WaitSlot(request) as granted:
        if not granted:
            return generation, {}
        ended = waiting.wait_until_ended(
            lambda: api_generation(request.user, generation.pk), seconds
        )
    return ended, {"Preference-Applied": f"wait={seconds}"}


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets a client that accepts only text/event-stream through content negotiation; the
    stream itself is a StreamingHttpResponse, and refusals are JSON problem documents."""

    media_type = "text/event-stream"
    format = "event-stream"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


class GenerationEvents(ApiView):
    required_scopes = {"GET": Scope.GENERATIONS_READ}
    renderer_classes = [renderers.JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="generations_events",
        summary="Stream a generation's events",
        description="Server-sent events (text/event-stream): an `event: generation` with the "
        "generation document now and each time it changes, then `event: end` when it has "
        "ended, or `event: timeout` after API_MAX_WAIT_SECONDS (reconnect to go on). Holds one "
        "of the key's API_MAX_WAITS_PER_KEY wait slots; none free: 429.",
        tags=["generations"],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                {"type": "string"}, description="the event stream"
            )
        },
    )
    def get(self, request, pk):
        generation = api_generation(request.user, pk)
        context = {"request": request, "output_urls": output_urls(request)}
        slot = waiting.WaitSlot(request)
        if not slot.take():
            raise Problem(
                status_code=429,
                code="rate_limited",
                detail=f"This key already holds {settings.API_MAX_WAITS_PER_KEY} waits or "
                "event streams; close one or poll.",
                headers={"Retry-After": "5"},
            )

        def stream():
            try:
                yield from waiting.event_stream(
                    lambda: api_generation(request.user, generation.pk),
                    lambda row: GenerationSerializer(row, context=context).data,
                    settings.API_MAX_WAIT_SECONDS,
                )
            finally:  # the client went away, or the stream ended
                slot.free()

        response = StreamingHttpResponse(stream(), content_type="text/event-stream")
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
        return response


class GenerationCancel(ApiView):
    required_scopes = {"POST": Scope.GENERATIONS_WRITE}

    @extend_schema(
        operation_id="generations_cancel",
        summary="Cancel a generation",
        description="Stop a generation that has not ended. Before the provider has it, it "
        "stops at once and its credits come back (200). At the provider, it is asked to stop: "
        "stopped at once, 200 with `cancel: canceled`; a running job the provider has only been "
        "signalled to stop, 202 with `cancel: requested` (it ends `canceled` with its credits "
        "back, or `succeeded` and charged if it was too far along); already finished at the "
        "provider, 202 with `cancel: finishing`. An ended generation answers 409 with its "
        "`state`.",
        tags=["generations"],
        request=None,
        responses={
            200: GenerationCancelSerializer,
            202: OpenApiResponse(
                GenerationCancelSerializer,
                description="Not stopped yet (`requested`) or too late (`finishing`)",
            ),
        },
    )
    def post(self, request, pk):
        generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
        outcome = generation_cancel(generation=generation, actor=Actor.of_request(request))
        generation.refresh_from_db()
        if outcome == "finished":
            # It had ended before this request: nothing was canceled, and saying 200 would
            # read as success. The state tells the client what happened instead.
            raise Problem(
                status_code=409,
                code="conflict",
                detail=f"This generation has ended ({generation.state}); there is nothing to "
                "cancel.",
                state=str(generation.state),
            )
        context = {"request": request, "output_urls": output_urls(request)}
        body = {**GenerationSerializer(generation, context=context).data, "cancel": outcome}
        return Response(
            body, status=status.HTTP_200_OK if outcome == "canceled" else status.HTTP_202_ACCEPTED
        )


class GenerationWebhooks(ApiView):
    """The delivery log of a generation's webhooks."""

    required_scopes = {"GET": Scope.GENERATIONS_READ}

    @extend_schema(
        operation_id="generations_webhooks_list",
        summary="List a generation's webhook deliveries",
        description="Every webhook delivery of this generation with its attempts, last "
        "status code and error, oldest first.",
        tags=["webhooks"],
        responses=WebhookDeliverySerializer(many=True),
    )
    def get(self, request, pk):
        generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
        deliveries = generation.webhook_deliveries.all()
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)


class WebhookRedeliver(ApiView):
    required_scopes = {"POST": Scope.GENERATIONS_WRITE}

    @extend_schema(
        operation_id="generations_webhooks_redeliver",
        summary="Send a webhook delivery again",
        description="Queue one of this generation's deliveries (delivered, failed or pending) "
        "to be sent again now, with the same message id (`webhook-id`) and fresh signed links; "
        "its retry schedule starts over. Answers the delivery row; follow it in the list.",
        tags=["webhooks"],
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    def post(self, request, pk, message_id):
        generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
        delivery = get_object_or_404(generation.webhook_deliveries, message_id=message_id)
        delivery = webhook_redeliver(delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookTest(ApiView):
    required_scopes = {"POST": Scope.GENERATIONS_WRITE}

    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a test webhook event",
        description="POST a signed `webhook.test` event to `url` now, as a real event would be "
        "sent (same headers and signature, `data` your latest generation or null), and answer "
        "how the receiver replied. Nothing is stored or retried.",
        tags=["webhooks"],
        request={"application/json": WebhookTestSerializer},
        responses={200: WebhookTestResultSerializer},
    )
    def post(self, request):
        serializer = WebhookTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = webhook_send_test(user=request.user, url=serializer.validated_data["url"])
        except WebhookUrlRefused as exc:
            raise Problem(
                status_code=400, code="invalid_input", detail=str(exc), errors={"url": str(exc)}
            ) from None
        return Response(result)


class Models(ApiView):
    required_scopes = {}

    @extend_schema(
        operation_id="models_list",
        summary="List models",
        description="The catalogue: every endpoint you can create with, the fields it takes, "
        "and its prices in credits by resolution and duration.",
        tags=["catalogue"],
        responses=ModelListSerializer,
    )
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

    @extend_schema(
        operation_id="estimate_create",
        summary="Estimate a generation",
        description="Price a create body without creating: the same input checks as create "
        "(400 for what create refuses), the credits it would hold, and in `refusal` what "
        "create would answer now because of the account (limits, credits). Uploads may be "
        "replaced by `image_count`.",
        tags=["catalogue"],
        request={
            "application/json": EstimateJsonSerializer,
            "multipart/form-data": EstimateUploadSerializer,
        },
        responses=EstimateResultSerializer,
    )
    def post(self, request):
        serializer = EstimateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        composed, valid, image_count = request_checks(
            serializer, user=request.user, declared_images=data["image_count"]
        )
        has_video = bool(data.get("video") or data.get("video_url"))
        uploads_check(data)
        with _video(data if data.get("video") else {}):  # an upload is probed, as create does
            pass
        try:
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
        refused_now = generation_refusal_now(
            user=request.user,
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
            resolution=valid.resolution,
            duration=valid.duration,
            list_credits=price.credits,
        )
        return Response(
            {
                "endpoint": valid.endpoint.id,
                "resolution": valid.resolution,
                "duration": valid.duration,
                "price_confirmed": price.confirmed,
                **estimate,
                # What create would answer now, because of the account's state (null: it
                # would be accepted, moderation aside).
                "refusal": None
                if refused_now is None
                else exception_handler(refusal(refused_now), {}).data,
                **extras,
            }
        )


class Account(ApiView):
    """Balance, plan, limits and today's usage; the key's own cap when called with a key."""

    required_scopes = {"GET": Scope.ACCOUNT_READ}

    @extend_schema(
        operation_id="account_retrieve",
        summary="Get the account",
        description="Balance, plan, limits and today's usage; with an API key, the key's "
        "scopes, monthly cap and spend.",
        tags=["account"],
        responses=AccountSerializer,
    )
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


class UnknownPath(ApiView):
    """Any other path under /api/: a problem+json 404 like the API's own, counted against the
    caller's rate limit (with its headers) like any request. Only API keys authenticate here:
    a session POST to a wrong path is a 404 too, not a CSRF refusal."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise Problem(
            status_code=404,
            code="not_found",
            detail=f"No API operation at {request.path}; see /api/docs/.",
        )


class SchemaView(ApiView, SpectacularAPIView):
    """The OpenAPI document, with the API's rate limit and its headers."""

    permission_classes = []


class DocsView(ApiView, SpectacularSwaggerSplitView):
    permission_classes = []
