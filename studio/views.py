from contextlib import ExitStack

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST, require_safe

from accounts.services import user_notifications_set
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
from .forms import MAX_TRANSITIONS, GenerateForm, SettingsForm


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
    items = _image_items(form, request) if request.method == "POST" else []
    if request.method == "POST" and form.is_valid():
        endpoint = catalogue.get_endpoint(form.cleaned_data["endpoint"])
        images = _images_from(form, endpoint, items)
        with ExitStack() as stack:
            video = _video_from(form, request, endpoint, stack)
            if not form.errors:
                try:
                    # Creative tools (issue 18): template, constraints, variations, reuse of
                    # an identical clip; one render or a batch (studio/creative.py).
                    target = creative.generate_submit(
                        request=request, form=form, images=images, video=video
                    )
                except InputError as exc:
                    refusal = exc
                    refusal_status = getattr(exc, "http_status", 400)  # 402: not enough credits
                    for name, message in exc.errors.items():
                        form.add_error(_form_field(form, name), message)
                else:
                    for kind, value in items:
                        if kind == "d":
                            drafts.draft_delete(value[1])
                    return redirect(target)
    if request.method == "POST":
        # An error: keep the images that came with this submit, in their order, so that they
        # need not be chosen again (a browser cannot refill a file input).
        kept = _kept_tokens(request.user, items)
        form.data = form.data.copy()
        form.data["image_draft"] = " ".join(kept)
        form.data["image_order"] = " ".join("d" for _ in kept)
    values = form.data if form.is_bound else remix
    endpoint_id = values.get("endpoint") or form["endpoint"].initial
    tokens = form.data.get("image_draft", "") if form.is_bound else remix.get("image_draft", "")
    context = {
        "form": form,
        "endpoints": selectors.studio_endpoints(),
        "modes": selectors.studio_modes(),
        "unavailable": selectors.studio_unavailable(),
        "current_endpoint": endpoint_id,
        "current_mode": next(
            (e["mode"] for e in selectors.studio_endpoints() if e["id"] == endpoint_id), "text"
        ),
        "draft_tokens": tokens.split(),
        "price": selectors.generate_price(
            user=request.user,
            endpoint_id=endpoint_id,
            resolution=values.get("resolution", ""),
            duration=values.get("duration", ""),
            transitions=_transition_seconds(values, len(tokens.split())),
        ),
        "creative": creative.panel_context(request=request, refusal=refusal),
    }
    status = refusal_status if request.method == "POST" else 200
    return render(request, "generation/generate.html", context, status=status)


def _transition_seconds(values, image_count: int) -> list[str]:
    """The keyframe lengths the page shows (one fewer than the keyframes, at least one)."""
    count = min(max(image_count - 1, 1), MAX_TRANSITIONS)
    return [str(values.get(f"t{n}_duration") or "") for n in range(1, count + 1)]


def _form_field(form, name: str) -> str | None:
    """The form field a refusal of the catalogue belongs to: images[2] is the image drop zone,
    transitions[0].duration the first keyframe's length; None puts it above the form."""
    if name.startswith("images["):
        return "image"
    if name.startswith("transitions["):
        index = int(name[len("transitions[") : name.index("]")])
        field = "prompt" if name.endswith(".prompt") else "duration"
        name = f"t{index + 1}_{field}"
    return name if name in form.fields else None


def _image_items(form, request) -> list[tuple[str, object]]:
    """The images of this submit in the page's order: ("d", (token, draft)) for one kept from
    the last submit, ("u", upload) for a new file. `image_order` ("d u d") is how the page
    interleaved them; without it (no script), kept ones come first."""
    tokens = form.data.get("image_draft", "").split()
    uploads = request.FILES.getlist("image")
    order = form.data.get("image_order", "").split()
    if sorted(order) != sorted(["d"] * len(tokens) + ["u"] * len(uploads)):
        order = ["d"] * len(tokens) + ["u"] * len(uploads)
    tokens_left, uploads_left = iter(tokens), iter(uploads)
    items = []
    for kind in order:
        if kind == "u":
            items.append(("u", next(uploads_left)))
            continue
        token = next(tokens_left)
        draft = drafts.draft_open(user=request.user, token=token)
        if draft is not None:  # expired or someone else's: dropped
            items.append(("d", (token, draft)))
    return items


def _kept_tokens(user, items) -> list[str]:
    tokens = []
    for kind, value in items:
        token = value[0] if kind == "d" else drafts.draft_save(user=user, upload=value)
        if token:  # an unusable upload is not kept; the form's error says why
            tokens.append(token)
    return tokens


def _images_from(form, endpoint, items) -> list:
    """The images for the chosen endpoint: the image link's bytes, or the uploaded and kept
    images in order (a single-image endpoint takes the last one chosen); errors go onto the
    form."""
    link = form.cleaned_data.get("image_url", "")
    if not endpoint.takes_images:
        return []
    if link and any(kind == "u" for kind, _ in items):
        form.add_error("image_url", "Give an image file or an image link, not both.")
        return []
    if link:  # it replaces an image kept from the last submit
        try:
            return [media.fetch_image_url(link)]
        except FetchRefused as exc:
            form.add_error("image_url", str(exc))
            return []
    images = [drafts.draft_read(value[1]) if kind == "d" else value for kind, value in items]
    if endpoint.media_max == 1:
        return images[-1:]
    return images


def _video_from(form, request, endpoint, stack):
    """The input video (an upload or a link), spooled and probed by generation.media as the
    API's is, for the length of `stack`; None when there is none. Refusals go onto the form."""
    upload = request.FILES.get("video")
    link = form.cleaned_data.get("video_url", "")
    if endpoint.video_field is None or not (upload or link):
        return None
    if upload and link:
        form.add_error("video_url", "Give a video file or a video link, not both.")
        return None
    try:
        return stack.enter_context(media.input_video(upload=upload, url=link or None))
    except (FetchRefused, media.VideoRejected) as exc:
        form.add_error("video" if upload else "video_url", str(exc))
        return None


def _remix_initial(request) -> dict:
    """?from=<id>: the form filled in with one's own clip's settings and images ("Try again",
    "Copy settings"). An input video is not copied: it is chosen again."""
    try:
        source = Generation.objects.visible_to(request.user).get(pk=request.GET.get("from"))
    except (Generation.DoesNotExist, ValidationError, ValueError):
        return {}
    initial = {
        name: str(value)
        for name, value in source.arguments.items()
        if name
        in (
            "negative_prompt",
            "aspect_ratio",
            "resolution",
            "duration",
            "pikaffect",
            "ingredients_mode",
            "modify_region",
        )
    }
    for number, transition in enumerate(source.arguments.get("transitions", [])[:4], start=1):
        initial[f"t{number}_duration"] = str(transition.get("duration", ""))
        initial[f"t{number}_prompt"] = transition.get("prompt", "")
    initial.update(endpoint=source.endpoint_id, prompt=source.prompt, preset=source.preset)
    if source.tier == "preview":
        initial["seed"] = source.seed
    tokens = []
    for item in source.inputs.filter(kind="image").exclude(file="").order_by("position"):
        try:
            with default_storage.open(item.file.name, "rb") as handle:
                token = drafts.draft_save(user=request.user, upload=handle)
        except OSError:  # swept by the media cleanup: the settings still come back
            continue
        if token:
            tokens.append(token)
    if tokens:
        initial["image_draft"] = " ".join(tokens)
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
        transitions=request.GET.get("transitions", "")[:100].split(",")
        if request.GET.get("transitions")
        else None,
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


@login_required
def account_settings(request):
    """The creator's settings: email notifications, and links to allauth's email and password
    pages."""
    form = SettingsForm(
        request.POST if request.method == "POST" else None,  # an unticked box sends nothing
        initial={"notify_by_email": request.user.notify_by_email},
    )
    if request.method == "POST" and form.is_valid():
        user_notifications_set(
            user=request.user, notify_by_email=form.cleaned_data["notify_by_email"]
        )
        messages.success(request, "Saved.")
        return redirect("account_settings")
    return render(request, "account/settings.html", {"form": form})


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
        "requested": "Asked the provider to stop it. If it has got too far to stop, it "
        "finishes and is charged as usual.",
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
