"""Request bodies shared by tests."""

# The site's create form for a plain text-to-video preview (posted to reverse("generate")).
FORM = {
    "endpoint": "fal-ai/pika/v2.2/text-to-video",
    "prompt": "a red fox in snow",
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
}
