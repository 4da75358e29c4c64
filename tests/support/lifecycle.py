from workflows.lifecycle import Actor, generation_move

TEST_ACTOR = Actor(process="test")


def move(generation_id, to, **changes) -> bool:
    """A move through the lifecycle (credits, webhook outbox, audit), as the product makes it."""
    return generation_move(generation_id=generation_id, to=to, actor=TEST_ACTOR, **changes)
