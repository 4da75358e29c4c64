from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from generation.models import Generation

from .forms import ReportForm
from .policy import get_policy
from .services import is_moderator, report_create

REPORT_THANKS = "Thanks for the report. Our moderators will review it."


def policy_content(request):
    policy = get_policy()
    return render(request, "policy/content.html", {"policy": policy})


def policy_acceptable_use(request):
    policy = get_policy()
    return render(request, "policy/acceptable_use.html", {"policy": policy})


@login_required
@require_http_methods(["GET", "POST"])
def report(request, pk):
    """Report an output the user can see. Anything else is a 404, whether it exists or not."""
    generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        report_create(
            generation=generation,
            reporter=request.user,
            reason=form.cleaned_data["reason"],
            details=form.cleaned_data["details"],
        )
        # The same answer for a first report and a duplicate; never who decides.
        messages.success(request, REPORT_THANKS)
        return redirect(generation)
    status = 400 if request.method == "POST" else 200
    return render(request, "moderation/report.html", {"g": generation, "form": form}, status=status)


def moderator_media(request, pk, kind: str):
    """Any output, poster or input, taken down or not: moderators only (admin previews)."""
    if not is_moderator(request.user):
        raise PermissionDenied
    if kind not in ("video", "poster", "input"):
        raise Http404("Unknown file")
    generation = get_object_or_404(Generation, pk=pk)
    if kind == "video":
        field, content_type = generation.output, "video/mp4"
    elif kind == "poster":
        field, content_type = generation.poster, "image/jpeg"
    else:
        first = generation.inputs.first()
        if first is None:
            raise Http404("No input image")
        field, content_type = first.file, first.content_type
    if not field:
        raise Http404("Not available")
    if hasattr(default_storage, "bucket_name"):
        return HttpResponseRedirect(default_storage.url(field.name))
    try:
        handle = default_storage.open(field.name, "rb")
    except FileNotFoundError:  # deleted by retention, or never written: not a server error
        raise Http404("The file is no longer stored") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response
