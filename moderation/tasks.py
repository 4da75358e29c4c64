from . import services


def purge_old_prompts() -> int:
    return services.purge_old_prompts()
