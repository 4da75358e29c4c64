from django.conf import settings


def site(request):
    return {
        "site_name": settings.SITE_NAME,
        "video_backend": settings.VIDEO_BACKEND,
        # Our address for emails (allauth renders them with the request's context processors):
        # the configured public URL, else the address this request came to.
        "public_url": settings.PUBLIC_BASE_URL + "/"
        if settings.PUBLIC_BASE_URL
        else request.build_absolute_uri("/"),
    }
