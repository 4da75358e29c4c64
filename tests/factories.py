import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import User
from generation.models import Generation, State


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        self.save()
        if create:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


class GenerationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generation

    user = factory.SubFactory(UserFactory)
    state = State.QUEUED
    endpoint_id = "fal-ai/pika/v2.2/text-to-video"
    backend = "local"
    prompt = "a red fox in snow"
    arguments = factory.LazyAttribute(
        lambda o: {"prompt": o.prompt, "resolution": "720p", "duration": 5}
    )
    seed = 42
    resolution = "720p"
    duration = 5
    aspect_ratio = "16:9"
    credit_cost = 40
    fal_price_usd = "0.20"
    queued_at = factory.LazyFunction(timezone.now)

    class Params:
        # A clip that rendered and was stored: GenerationFactory(succeeded=True).
        succeeded = factory.Trait(
            state=State.SUCCEEDED,
            output="outputs/a.mp4",
            poster="posters/a.jpg",
            video_width=1280,
            video_height=720,
            video_duration=5.0,
            video_bytes=1000,
            video_codec="h264",
        )
