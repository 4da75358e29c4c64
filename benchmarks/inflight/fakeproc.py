"""The fake fal's process for the benchmark (a module of its own so `spawn` can import it)."""


def serve(pipe, inference: float, queue: float = 0.05) -> None:
    from tests.fakefal import FakeFal

    with FakeFal(
        queue_time=queue,
        inference_time=inference,
        record_requests=False,
        webhook_workers=16,
        webhook_retries=3,
    ) as fake:
        pipe.send({"env": fake.env("bench-key-id:bench-secret"), "jwks_url": fake.jwks_url})
        pipe.recv()
        pipe.send(fake.completion_times())
