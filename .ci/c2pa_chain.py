"""Print `export` lines for a throw-away C2PA signing chain in the folder given.

Production refuses to start without a configured chain (generation.E001); the plain-install
check in .ci/run configures one the way a deployment would, with files on disk."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from generation.provenance import write_throwaway_chain  # noqa: E402

for name, value in write_throwaway_chain(Path(sys.argv[1])).items():
    print(f"export {name}={value}")
