"""The website's creative tools (issue 18): templates, constraints, lint, variations, reuse on
the generate page; the comparison page of a batch; the storyboard page.

Kept apart from studio/views.py: the generate view calls `generate_submit` where it used to
call generation_create, and the page includes templates/creative/_panel.html; everything else
is here, in its own templates and static/js/creative.js."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import InputError
from creative import constraints as creative_constraints
from creative import lint, storyboard, templating
from creative.models import Batch
from generation import catalogue
from generation.models import State
from workflows.batches import (
    MAX_VARIATIONS,
    BatchRefused,
    Variant,
    batch_create,
    batch_estimate,
    batch_keep,
    generation_create_composed,
    seeds_for,
)
from workflows.generations import DuplicateRequest


def _posted_constraints(request) -> str:
    """The constraints as the panel posted them (the user's default without the panel)."""
    post = request.POST
    if not post.get("constraints_shown"):
        choice = creative_constraints.preference_of(request.user)
    else:
        choice = creative_constraints.resolve(
            request.user,
            on=bool(post.get("constraints_on")),
            terms=post.get("constraints_text", "")[:300],
        )
        if post.get("constraints_remember"):
            creative_constraints.preference_set(user=request.user, on=choice.on, terms=choice.terms)
    return choice.terms if choice.on else ""


def _posted_template(request):
    slug = request.POST.get("template", "")[:60]
    if not slug:
        return None, {}
    try:
        template = templating.template_get(user=request.user, slug=slug)
        slots = json.loads(request.POST.get("slots") or "{}")
    except (InputError, ValueError):
        return None, {}
    if not isinstance(slots, dict):
        return template, {}
    return template, {str(k)[:40]: str(v)[:200] for k, v in slots.items()}


def _slot_variants(request, form, template, slots) -> list[Variant]:
    """ "Vary one slot": the template's prompt once per value (one per line), one seed."""
    name = request.POST.get("vary_slot", "")[:40]
    lines = request.POST.get("vary_values", "").splitlines()
    values = [" ".join(line.split())[:200] for line in lines if line.strip()]
    if template is None or not name or not values:
        return []
    if name not in {slot["name"] for slot in template.slots}:
        raise InputError({"vary_slot": f"{template.title} has no slot {name!r}."})
    if not 2 <= len(values) <= MAX_VARIATIONS:
        raise InputError(
            {"vary_values": f"Give 2 to {MAX_VARIATIONS} values, one per line; got {len(values)}."}
        )
    seed = seeds_for(1, form.cleaned_data["seed"])[0]  # one seed: only the slot differs
    variants = []
    for value in values:
        filled = templating.template_fill(template, {**slots, name: value})
        variants.append(
            Variant(
                inputs={**form.endpoint_inputs(), "prompt": filled.prompt},
                seed=seed,
                label=value,
                slots=filled.slots,
            )
        )
    return variants


def generate_submit(*, request, form, images, video=None) -> str:
    """Create what the generate page asked for; the URL to show next. Raises InputError
    (DuplicateRequest and BatchRefused included) for the page to explain."""
    data = form.cleaned_data
    template, slots = _posted_template(request)
    constraints = _posted_constraints(request)
    try:
        count = int(request.POST.get("variations") or 1)
    except ValueError:
        count = 1
    count = max(1, min(count, MAX_VARIATIONS))
    variants, varied = _slot_variants(request, form, template, slots), "seed"
    if variants:
        varied = request.POST["vary_slot"][:40]
    elif count > 1:
        variants = [
            Variant(
                inputs=form.endpoint_inputs(image_count=len(images)),
                seed=seed,
                label=f"Seed {seed}",
                slots=slots,
            )
            for seed in seeds_for(count, data["seed"])
        ]
    if variants:
        result = batch_create(
            user=request.user,
            kind=Batch.Kind.VARIATIONS,
            endpoint_id=data["endpoint"],
            variants=variants,
            images=images,
            video=video,
            preset=data["preset"],
            template=template,
            title=(data.get("prompt") or "")[:200],
            varied=varied,
            constraints=constraints,
            partial=bool(request.POST.get("partial")),
            request=request,
        )
        for refused in result.refused:
            messages.warning(
                request, f"Variation {refused['position'] + 1} did not start: {refused['message']}"
            )
        return result.batch.get_absolute_url()
    generation = generation_create_composed(
        template=template,
        slots=slots,
        user=request.user,
        endpoint_id=data["endpoint"],
        inputs=form.endpoint_inputs(image_count=len(images)),
        images=images,
        video=video,
        preset=data["preset"],
        seed=data["seed"],
        request=request,
        constraints=constraints,
        offer_existing=not request.POST.get("force"),
    )
    return generation.get_absolute_url()


def panel_context(*, request, refusal: InputError | None = None) -> dict:
    """What templates/creative/_panel.html shows: templates, constraints, the refusal's
    existing clip or the variations that would fit."""
    choice = creative_constraints.preference_of(request.user)
    post = request.POST if request.method == "POST" else {}
    context = {
        "templates": [
            templating.template_document(t) for t in templating.templates_for(request.user)
        ],
        "constraints_on": bool(post.get("constraints_on"))
        if post.get("constraints_shown")
        else choice.on,
        "constraints_text": post.get("constraints_text") or choice.terms,
        "constraints_label": creative_constraints.DEFAULT_LABEL,
        "variations": str(post.get("variations") or "1"),
        "variation_choices": [str(n) for n in range(1, MAX_VARIATIONS + 1)],
        "template_slug": post.get("template", ""),
        "slots_json": post.get("slots", ""),
        "duplicate": refusal.existing if isinstance(refusal, DuplicateRequest) else None,
        "batch_refused": isinstance(refusal, BatchRefused),
    }
    return context


@login_required
@require_GET
def hints(request):
    """The studio's live lint (static/js/creative.js): hints for the current choices."""
    try:
        image_count = min(int(request.GET.get("images") or 0), 6)
    except ValueError:
        image_count = 0
    found = lint.prompt_hints(
        request.GET.get("prompt", "")[:5000],
        endpoint_id=request.GET.get("endpoint", "")[:200] or catalogue.DEFAULT_TEXT_ENDPOINT,
        preset=request.GET.get("preset", "static")[:20],
        image_count=image_count,
        aspect_ratio=request.GET.get("aspect_ratio", "")[:8],
    )
    return JsonResponse({"hints": [hint.as_dict() for hint in found]})


@login_required
@require_GET
def variations_price(request):
    """The total of N variations of the current choices, each as its create would be held."""
    params = request.GET
    endpoint = params.get("endpoint", "")[:200] or catalogue.DEFAULT_TEXT_ENDPOINT
    try:
        count = max(1, min(int(params.get("variations") or 1), MAX_VARIATIONS))
    except ValueError:
        count = 1
    inputs = {
        name: params[name][:20]
        for name in ("resolution", "duration", "aspect_ratio")
        if params.get(name)
    }
    inputs["prompt"] = "price"  # the price does not depend on the words
    try:
        endpoint_spec = catalogue.get_endpoint(endpoint)
        inputs = {k: v for k, v in inputs.items() if k in endpoint_spec.fields}
        estimate = batch_estimate(
            user=request.user,
            endpoint_id=endpoint,
            inputs=inputs,
            count=count,
            image_count=endpoint_spec.media_min,
        )
    except InputError as exc:
        return JsonResponse({"allowed": False, "message": " ".join(exc.errors.values())})
    free = sum(1 for r in estimate["renders"] if r["fits"] and r["free_preview"])
    paid = estimate["total_credits"]
    parts = []
    if free:
        parts.append(f"{free} free preview{'s' if free != 1 else ''}")
    if paid:
        parts.append(f"{paid} credits")
    label = f"Generate {count} variations · " + (" + ".join(parts) or "0 credits")
    message = "Each is held, charged when ready and refunded if it fails, like one render."
    if not estimate["all_fit"]:
        first = next(r for r in estimate["renders"] if not r["fits"])
        message = (
            f"Only {estimate['fitting']} of {count} would start now: {first['why']} "
            "Ask for fewer, or start the ones that fit."
        )
    return JsonResponse({"allowed": True, "label": label, "message": message, "estimate": estimate})


@login_required
def batch_detail(request, pk):
    """The comparison grid: every render of a batch side by side, keep / render in HD each."""
    batch = get_object_or_404(Batch.objects.filter(user=request.user), pk=pk)
    recipes = list(
        batch.recipes.select_related("generation").filter(generation__deleted_at__isnull=True)
    )
    working = any(not r.generation.is_terminal for r in recipes)
    context = {
        "batch": batch,
        "recipes": recipes,
        "working": working,
        "succeeded": State.SUCCEEDED,
    }
    return render(request, "creative/batch.html", context)


@login_required
@require_POST
def keep(request, pk, generation_id):
    batch = get_object_or_404(Batch.objects.filter(user=request.user), pk=pk)
    try:
        batch_keep(
            user=request.user, generation_id=generation_id, kept=not request.POST.get("unkeep")
        )
    except InputError as exc:
        messages.error(request, " ".join(exc.errors.values()))
    return redirect(batch)


@login_required
def storyboard_page(request):
    """Paste a text → scenes to edit (split, or written by the chat model) → one batch."""
    templates = templating.templates_for(request.user)
    story_first = sorted(templates, key=lambda t: t.kind != "story")
    context = {"templates": story_first, "text": "", "scenes": [], "price": None, "errors": {}}
    if request.method != "POST":
        return render(request, "creative/storyboard.html", context)
    post = request.POST
    text = post.get("text", "")
    context.update(text=text, template_slug=post.get("template", ""), title=post.get("title", ""))
    try:
        template = templating.template_get(
            user=request.user, slug=post.get("template") or "story-scene"
        )
        if post.get("action") == "queue":
            scenes = [post.get(f"scene_{n}", "").strip() for n in range(storyboard.MAX_SCENES)]
            scenes = [s for s in scenes if s]
            source, note = "yours", ""
        else:
            draft = storyboard.storyboard_draft(text)
            scenes, source, note = draft.scenes, draft.source, draft.note
        filled = storyboard.storyboard_fill(template, scenes)
        suggestions = templating.template_suggestions(template, template.endpoint_id)
        preset = suggestions.pop("preset", "static")
        variants = [
            Variant(inputs={**suggestions, "prompt": f.prompt}, label=s, slots=f.slots)
            for f, s in zip(filled, scenes, strict=True)
        ]
        if post.get("action") == "queue":
            result = batch_create(
                user=request.user,
                kind=Batch.Kind.STORYBOARD,
                endpoint_id=template.endpoint_id,
                variants=variants,
                preset=preset,
                template=template,
                title=post.get("title", "")[:200] or scenes[0][:200],
                source_text=text,
                constraints=_posted_constraints(request),
                request=request,
            )
            return redirect(result.batch)
        price = batch_estimate(
            user=request.user,
            endpoint_id=template.endpoint_id,
            inputs=variants[0].inputs,
            count=len(variants),
            preset=preset,
        )
    except InputError as exc:
        context["errors"] = exc.errors
        status = getattr(exc, "http_status", 400)
        return render(request, "creative/storyboard.html", context, status=status)
    context.update(
        scenes=[{"text": v.label, "prompt": v.inputs["prompt"]} for v in variants],
        source=source,
        note=note,
        price=price,
        price_why=next((r["why"] for r in price["renders"] if not r["fits"]), ""),
        template_slug=template.slug,
        constraints=creative_constraints.preference_of(request.user),
    )
    return render(request, "creative/storyboard.html", context)
