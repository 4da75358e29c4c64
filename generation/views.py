from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import catalogue
from .catalogue import InputError
from .forms import GenerateForm
from .models import Generation, State
from .progress import progress_of
from .services import generation_cancel, generation_create


def home(request):
    if request.user.is_authenticated:
        return redirect("generate")
    return render(request, "home.html")


@login_required
def generate(request):
    form = GenerateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        images = [request.FILES["image"]] if request.FILES.get("image") else []
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
            for name, message in exc.errors.items():
                form.add_error(name if name in form.fields else None, message)
        else:
            return redirect(generation)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "endpoints": _endpoint_table()}
    return render(request, "generation/generate.html", context, status=status)


def _endpoint_table():
    rows = []
    for endpoint in catalogue.endpoints():
        if not endpoint.on_website:
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
    return render(
        request, "generation/detail.html", {"g": generation, "progress": progress_of(generation)}
    )


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


@login_required
def media_file(request, pk, kind: str):
    """Serve a user's own video, poster or input. Never the media root as a whole."""
    if kind not in ("video", "poster", "input"):
        raise Http404("Unknown file")
    generation = _own_generation(request, pk)
    if kind == "video":
        field, content_type = generation.output, "video/mp4"
        filename = f"promptreel-{generation.pk}.mp4"
    elif kind == "poster":
        field, content_type, filename = generation.poster, "image/jpeg", None
    else:
        first = generation.inputs.first()
        if first is None:
            raise Http404("No input image")
        field, content_type, filename = first.file, first.content_type, None
    if not field:
        raise Http404("Not available yet")
    if generation.state != State.SUCCEEDED and kind != "input":
        raise Http404("Not available")
    if hasattr(default_storage, "bucket_name"):
        return HttpResponseRedirect(default_storage.url(field.name))
    response = FileResponse(
        default_storage.open(field.name, "rb"),
        content_type=content_type,
        as_attachment=bool(filename and request.GET.get("download")),
        filename=filename or "",
    )
    response["Cache-Control"] = "private, max-age=300"
    return response
