"""Count the database queries a process makes, for the benchmark (never used by the product).

`install(directory, role)` hooks every new database connection with an execute wrapper and
starts, per process (qcluster forks its workers), a thread that writes the running count to
`<directory>/<role>-<pid>.json` twice a second. Forked workers exit without running atexit,
hence the periodic writes; the benchmark waits a second before reading the final counts.
"""

import json
import os
import threading
import time

_state = {"pid": None, "count": 0}
_lock = threading.Lock()


def install(directory: str, role: str) -> None:
    from django.db.backends.signals import connection_created

    def count(execute, sql, params, many, context):
        with _lock:
            if _state["pid"] != os.getpid():
                # A forked child: its queries are its own, written to its own file.
                _state["pid"] = os.getpid()
                _state["count"] = 0
                threading.Thread(target=_flush, args=(directory, role), daemon=True).start()
            _state["count"] += len(params) if many and params is not None else 1
        return execute(sql, params, many, context)

    def hook(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(hook, weak=False)


def _flush(directory: str, role: str) -> None:
    pid = os.getpid()
    path = os.path.join(directory, f"{role}-{pid}.json")
    written = None
    while True:
        with _lock:
            count = _state["count"]
        if count != written:  # the counter's own cost stays out of the figures it measures
            with open(path + ".tmp", "w") as out:
                json.dump({"role": role, "pid": pid, "queries": count}, out)
            os.replace(path + ".tmp", path)
            written = count
        time.sleep(0.5)


def totals(directory: str) -> dict[str, int]:
    """Queries so far, summed per role."""
    result: dict[str, int] = {}
    for name in os.listdir(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as stream:
                data = json.load(stream)
            result[data["role"]] = result.get(data["role"], 0) + data["queries"]
    return result
