"""The fake fal's process for the chaos benchmark (a module of its own so `spawn` imports it)."""


def serve(pipe, options: dict) -> None:
    from tests.fakefal import FakeFal

    with FakeFal(record_requests=False, webhook_workers=16, **options) as fake:
        pipe.send({"env": fake.env("chaos-key-id:chaos-secret"), "jwks_url": fake.jwks_url})
        pipe.recv()
        requests = []
        for rid in fake.request_ids():
            request = fake.get_request(rid)
            requests.append(
                {
                    "request_id": rid,
                    "seed": request["arguments"].get("seed"),
                    "state": request["state"],
                    "cancelled": request["cancelled"],
                    "outcome": request["outcome"].kind,
                }
            )
        pipe.send(
            {
                "requests": requests,
                "chaos": dict(fake.chaos_counts),
                "webhook_posts": len(fake.webhook_deliveries),
                "errors": [repr(error) for error in fake.errors],
            }
        )
