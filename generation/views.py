from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from moderation.services import is_moderator, output_is_taken_down

from . import catalogue, delivery, media
from .catalogue import InputError
from .forms import GenerateForm
from .models import Generation, State
from .progress import progress_of
from .safe_fetch import FetchRefused
from .services import generation_cancel, generation_create


def home(request):
    if request.user.is_authenticated:
        return redirect("generate")
    return render(request, "home.html")


@login_required
def generate(request):
    form = GenerateForm(request.POST or None, request.FILES or None)
    refusal_status = 400
    if request.method == "POST" and form.is_valid():
        images = _images_from(form, request)
        if not form.errors:
            try:
                generation = generation_create(
                    user=request.user,
                    endpoint_id=form.cleaned_data["endpoint"],
                    inputs=form.endpoint_inputs(),
                    images=images,
                    preset=form.cleaned_data["preset"],
                    seed=form.cleaned_data["seed"],
                )
            except InputError as exc:
                refusal_status = getattr(exc, "http_status", 400)  # 402: not enough credits
                for name, message in exc.errors.items():
                    form.add_error(name if name in form.fields else None, message)
            else:
                return redirect(generation)
    status = refusal_status if request.method == "POST" else 200
    context = {
        "form": form,
        "endpoints": _endpoint_table(),
        # Which form fields each endpoint takes, so the page can hide the others.
        "endpoint_fields": {
            endpoint.id: [
                *endpoint.fields,
                *(["image", "image_url"] if endpoint.takes_images else []),
            ]
            for endpoint in catalogue.endpoints()
            if endpoint.on_website
        },
    }
    return render(request, "generation/generate.html", context, status=status)


def _images_from(form, request) -> list:
    """The uploaded file, or the bytes behind the image link; errors go onto the form."""
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
    return [upload] if upload else []


def _endpoint_table():
    rows = []
    for endpoint in catalogue.endpoints():
        if not endpoint.on_website or not catalogue.is_priced(endpoint):
            continue
        prices = []
        for resolution in endpoint.choices("resolution") or ["720p"]:
            for duration in endpoint.choices("duration") or [5]:
                try:
                    usd, confirmed = catalogue.fal_price_usd(endpoint, resolution, duration)
                except catalogue.PriceUnknown:
                    continue
                prices.append(
                    {
                        "label": f"{resolution} · {duration}s",
                        "credits": catalogue.credits_for_usd(usd),
                        "confirmed": confirmed,
                    }
                )
        rows.append({"endpoint": endpoint, "prices": prices})
    return rows


def _own_generation(request, pk) -> Generation:
    return get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)


@login_required
def detail(request, pk):
    generation = _own_generation(request, pk)
    context = {
        "g": generation,
        "progress": progress_of(generation),
        "taken_down": generation.state == State.SUCCEEDED and output_is_taken_down(generation),
    }
    return render(request, "generation/detail.html", context)


@login_required
def status(request, pk):
    generation = _own_generation(request, pk)
    return JsonResponse(progress_of(generation))


@login_required
def gallery(request):
    generations = Generation.objects.visible_to(request.user)
    page = Paginator(generations, 24).get_page(request.GET.get("page"))
    return render(request, "generation/gallery.html", {"page": page})


@login_required
@require_POST
def cancel(request, pk):
    generation = _own_generation(request, pk)
    outcome = generation_cancel(generation=generation)
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
    if generation.state != State.SUCCEEDED and kind != "input":
        raise Http404("Not available")
    moderator = is_moderator(request.user)
    if kind != "input" and not moderator and output_is_taken_down(generation):
        raise Http404("Taken down by moderators")
    url = delivery.signed_url(
        field.name, content_type=content_type, filename=filename, download=download
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def media_signed(request, token: str):
    """Serve a stored file named by a signed token (filesystem storage only), with Range."""
    try:
        signed = delivery.verify_token(token)
    except delivery.BadToken as exc:
        return HttpResponse(exc.message, status=403, content_type="text/plain")
    if delivery.is_s3():
        raise Http404("Files are served from the bucket")
    return delivery.file_response(request, signed)
