from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST, require_safe

from billing.hd import hd_version
from core.errors import InputError
from core.problems import problem_json
from core.safe_fetch import FetchRefused
from generation import catalogue, delivery, drafts, media
from generation.models import Generation, State
from generation.progress import progress_of
from moderation.services import is_moderator, output_is_taken_down, signed_link_taken_down
from workflows.circuit import PAUSED_NOTICE, provider_paused
from workflows.generations import (
    generation_cancel,
    generation_delete,
    generation_render_hd,
)
from workflows.lifecycle import Actor

from . import creative, selectors
from .forms import GenerateForm


def home(request):
    if request.user.is_authenticated:
        return redirect("generate")
    return render(request, "home.html")


@login_required
def generate(request):
    remix = _remix_initial(request) if request.method == "GET" else {}
    form = GenerateForm(request.POST or None, request.FILES or None, initial=remix)
    refusal_status = 400
    refusal = None
    draft = None
    if request.method == "POST" and form.is_valid():
        draft = drafts.draft_open(user=request.user, token=form.cleaned_data["image_draft"])
        images = _images_from(form, request, draft)
        if not form.errors:
            try:
                # Creative tools (issue 18): template, constraints, variations, reuse of an
                # identical clip; one render or a batch (studio/creative.py).
                target = creative.generate_submit(request=request, form=form, images=images)
            except InputError as exc:
                refusal = exc
                refusal_status = getattr(exc, "http_status", 400)  # 402: not enough credits
                for name, message in exc.errors.items():
                    form.add_error(name if name in form.fields else None, message)
            else:
                if draft and not request.FILES.get("image"):
                    drafts.draft_delete(draft)
                return redirect(target)
    if request.method == "POST":
        # An error: keep the image that came with this submit, so that it need not be chosen
        # again (a browser cannot refill a file input).
        upload = request.FILES.get("image")
        token = drafts.draft_save(user=request.user, upload=upload) if upload else None
        kept = form.data.get("image_draft", "")
        if token is None and drafts.draft_open(user=request.user, token=kept):
            token = kept
        form.data = form.data.copy()
        form.data["image_draft"] = token or ""
    values = form.data if form.is_bound else remix
    endpoint_id = values.get("endpoint") or form["endpoint"].initial
    context = {
        "form": form,
        "endpoints": selectors.studio_endpoints(),
        "modes": selectors.studio_modes(),
        "current_endpoint": endpoint_id,
        "current_mode": next(
            (e["mode"] for e in selectors.studio_endpoints() if e["id"] == endpoint_id), "text"
        ),
        "draft_token": form.data.get("image_draft", "")
        if form.is_bound
        else remix.get("image_draft", ""),
        "price": selectors.generate_price(
            user=request.user,
            endpoint_id=endpoint_id,
            resolution=values.get("resolution", ""),
            duration=values.get("duration", ""),
        ),
        "creative": creative.panel_context(request=request, refusal=refusal),
    }
    status = refusal_status if request.method == "POST" else 200
    return render(request, "generation/generate.html", context, status=status)


def _remix_initial(request) -> dict:
    """?from=<id>: the form filled in with one's own clip's settings and image ("Try again",
    "Copy settings")."""
    try:
        source = Generation.objects.visible_to(request.user).get(pk=request.GET.get("from"))
    except (Generation.DoesNotExist, ValidationError, ValueError):
        return {}
    initial = {
        name: str(value)
        for name, value in source.arguments.items()
        if name in ("negative_prompt", "aspect_ratio", "resolution", "duration", "pikaffect")
    }
    initial.update(endpoint=source.endpoint_id, prompt=source.prompt, preset=source.preset)
    if source.tier == "preview":
        initial["seed"] = source.seed
    first = source.inputs.filter(kind="image").exclude(file="").first()
    if first is not None:
        try:
            with default_storage.open(first.file.name, "rb") as handle:
                initial["image_draft"] = drafts.draft_save(user=request.user, upload=handle) or ""
        except OSError:  # swept by the media cleanup: the settings still come back
            pass
    return initial


@login_required
@require_GET
def generate_price(request):
    """The Generate button's price for the current choices (static/js/generate.js)."""
    price = selectors.generate_price(
        user=request.user,
        endpoint_id=request.GET.get("endpoint", "")[:200],
        resolution=request.GET.get("resolution", "")[:20],
        duration=request.GET.get("duration", "")[:20],
    )
    return JsonResponse(price)


@login_required
@require_GET
def draft_image(request, token: str):
    """The thumbnail of the image kept across a form error (generation.drafts)."""
    draft = drafts.draft_open(user=request.user, token=token)
    if draft is None:
        raise Http404("No such image")
    response = HttpResponse(drafts.draft_read(draft), content_type=draft["type"])
    response["Cache-Control"] = "private, max-age=600"
    return response


def _images_from(form, request, draft=None) -> list:
    """The uploaded file, the bytes behind the image link, or the image kept from the last
    submit; errors go onto the form."""
    upload = request.FILES.get("image")
    link = form.cleaned_data.get("image_url", "")
    if upload and link:
        form.add_error("image_url", "Give an image file or an image link, not both.")
        return []
    if link:
        try:
            return [media.fetch_image_url(link)]
        except FetchRefused as exc:
            form.add_error("image_url", str(exc))
            return []
    if upload:
        return [upload]
    endpoint = catalogue.get_endpoint(form.cleaned_data["endpoint"])
    if draft and endpoint.takes_images:
        return [drafts.draft_read(draft)]
    return []


def _own_generation(request, pk) -> Generation:
    return get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)


@login_required
def detail(request, pk):
    generation = _own_generation(request, pk)
    context = {
        "g": generation,
        "settings": selectors.generation_settings(generation),
        "progress": _progress(generation),
        "taken_down": generation.state == State.SUCCEEDED and output_is_taken_down(generation),
    }
    return render(request, "generation/detail.html", context)


@login_required
def status(request, pk):
    generation = _own_generation(request, pk)
    return JsonResponse(_progress(generation))


def _progress(generation: Generation) -> dict:
    paused = generation.state == State.QUEUED and provider_paused(generation.backend) is not None
    return progress_of(generation, paused_notice=PAUSED_NOTICE if paused else "")


@login_required
def gallery(request):
    filters = selectors.GalleryFilters.from_query(request.GET)
    generations = selectors.gallery_generations(request.user, filters)
    page = Paginator(generations, 24).get_page(request.GET.get("page"))
    context = {"page": page, "filters": filters, "query": filters.query_string()}
    return render(request, "generation/gallery.html", context)


@login_required
@require_POST
def delete(request, pk):
    generation = _own_generation(request, pk)
    try:
        generation_delete(generation=generation, request=request)
    except InputError as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return redirect(generation)
    messages.info(request, "Deleted. Your statement keeps what it cost.")
    back = request.POST.get("next", "")
    if back.startswith("/gallery/") and url_has_allowed_host_and_scheme(back, None):
        return redirect(back)
    return redirect("gallery")


@login_required
@require_POST
def cancel(request, pk):
    generation = _own_generation(request, pk)
    outcome = generation_cancel(generation=generation, actor=Actor.of_request(request))
    text = {
        "canceled": "Canceled.",
        "finishing": "Too late to cancel: the video is already being saved.",
        "finished": "This generation had already finished.",
    }[outcome]
    messages.info(request, text)
    return redirect(generation)


MEDIA_KINDS = ("video", "poster", "input")


def _media_generation(request, pk) -> Generation:
    """The owner's generation, or anyone's for a moderator; 404 otherwise (never 403, which
    would confirm that the id exists)."""
    generation = Generation.objects.filter(pk=pk).first()
    if generation is None or not (
        generation.user_id == request.user.pk or is_moderator(request.user)
    ):
        raise Http404("No such generation")
    return generation


@login_required
@require_GET
def media_file(request, pk, kind: str):
    """Owner (or moderator) check, then a 302 to a short-lived signed URL for that one file.

    ?download=1 asks for the video as an attachment. The redirect itself is never cached,
    so every page view gets a link that is still valid.
    """
    if kind not in MEDIA_KINDS:
        raise Http404("Unknown file")
    generation = _media_generation(request, pk)
    if generation.deleted_at is not None:
        raise Http404("Deleted")
    download = False
    if kind == "video":
        field, content_type = generation.output, "video/mp4"
        filename = f"promptreel-{generation.pk}.mp4"
        download = bool(request.GET.get("download"))
    elif kind == "poster":
        field, content_type, filename = generation.poster, "image/jpeg", ""
    else:
        first = generation.inputs.first()
        if first is None:
            raise Http404("No input image")
        field, content_type, filename = first.file, first.content_type, ""
    if not field:
        raise Http404("Not available yet")
    moderator = is_moderator(request.user)
    # A held output (moderation.services.output_hold) is shown to moderators only.
    shown = (State.SUCCEEDED, State.HELD) if moderator else (State.SUCCEEDED,)
    if generation.state not in shown and kind != "input":
        raise Http404("Not available")
    if kind != "input" and output_is_taken_down(generation):
        if moderator:  # their own view serves it, taken down or not
            return redirect("moderation_media", pk=generation.pk, kind=kind)
        raise Http404("Taken down by moderators")
    url = delivery.signed_url(
        field.name,
        content_type=content_type,
        filename=filename,
        download=download,
        generation_id=generation.pk if kind != "input" else None,
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    return response


@require_safe
def media_signed(request, token: str):
    """Serve a stored file named by a signed token (filesystem storage only), with Range.

    API clients follow these links, so refusals are problem details like the API's. The
    take-down is checked on every request: a link handed out before it stops working at once.
    """
    try:
        signed = delivery.verify_token(token)
    except delivery.BadToken as exc:
        return problem_json(403, "forbidden", exc.message)
    if delivery.is_s3():
        return problem_json(404, "not_found", "Files are served from the bucket.")
    if signed_link_taken_down(signed):
        return problem_json(404, "not_found", "Taken down by moderators.")
    try:
        return delivery.file_response(request, signed)
    except Http404 as exc:
        return problem_json(404, "not_found", str(exc))


@login_required
@require_POST
def render_hd(request, pk):
    """Re-run one's own preview at 1080p with the same prompt, image and seed (paid)."""
    source = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
    existing = hd_version(source)
    if existing is not None:  # bought already: show it, never charge twice
        messages.info(request, "This is the HD version you already have of that preview.")
        return redirect(existing)
    try:
        generation = generation_render_hd(user=request.user, source=source)
    except InputError as exc:
        for message in exc.errors.values():
            messages.error(request, message)
        return redirect(source)
    return redirect(generation)
