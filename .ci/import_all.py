"""Import every module of the project, so a runtime dependency missing from
[project.dependencies] fails here rather than in production (run in the plain-install venv).

`check --deploy` imports only what the URLconf and the checks reach; this also covers
management commands, tasks, backends and migrations.
"""

import importlib
import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"tests", "benchmarks", "deploy", ".ci", ".venv", "staticfiles", "media"}  # deploy: configs

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

failed = []
count = 0
for path in sorted(ROOT.rglob("*.py")):
    relative = path.relative_to(ROOT)
    if relative.parts[0] in SKIP or len(relative.parts) == 1:
        continue  # manage.py and the like are scripts, not modules
    module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
    try:
        importlib.import_module(module)
        count += 1
    except Exception as exc:
        failed.append(f"{module}: {type(exc).__name__}: {exc}")
print(f"imported {count} modules")
if failed:
    print("could not import:", *failed, sep="\n  ", file=sys.stderr)
    sys.exit(1)
