SCHEDULES = (
    # (name, function, minutes between runs)
    ("retry due API webhooks", "api.tasks.deliver_due_webhooks", 1),
    ("prune API rate counters", "api.tasks.prune", 60),
)
