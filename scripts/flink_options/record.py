"""Record every configuration key a Flink release knows, from its own jars (not from docs).

    .venv/bin/python scripts/flink_options/record.py [1.20.5 2.3.0 ...]

For each release (installed from PyPI into the cache, as for the demo image)
it compiles ListConfigOptions.java against lib/, loads every *Options class of
flink-dist by reflection and writes flink_runbook/flink/option_catalogues/<release>.json:
each key with its default and the older keys Flink still reads in its place.
The audit uses these files to tell a renamed key from one that is gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from flink_runbook.demo.image import flink_distribution  # noqa: E402
from flink_runbook.demo.versions import SUPPORTED_FLINK_VERSIONS  # noqa: E402

OUT = REPO / "flink_runbook" / "flink" / "option_catalogues"


def option_classes(dist_jar: Path) -> list[str]:
    names = zipfile.ZipFile(dist_jar).namelist()
    return sorted(
        n.removesuffix(".class").replace("/", ".") for n in names if n.endswith("Options.class") and "$" not in n
    )


def record(version: str) -> Path:
    lib = flink_distribution(version) / "lib"
    classpath = ":".join(str(j) for j in sorted(lib.glob("*.jar")))
    with tempfile.TemporaryDirectory() as classes:
        source = Path(__file__).with_name("ListConfigOptions.java")
        subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", classes, str(source)], check=True)
        listing = subprocess.run(
            [
                "java",
                "-cp",
                f"{classes}:{classpath}",
                "ListConfigOptions",
                *option_classes(lib / f"flink-dist-{version}.jar"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    options: dict[str, dict] = {}
    for line in listing.splitlines():
        if line.startswith("#"):
            continue  # a class that does not load without optional dependencies
        key, deprecated, default, fallbacks = (line.split("\t") + [""] * 4)[:4]
        entry = options.setdefault(key, {"default": None, "deprecated": True, "replaces": [], "falls_back_to": []})
        entry["default"] = None if default == "null" else default
        # 1.20 declares some keys twice, in a deprecated class and its replacement: deprecated only if every one is.
        entry["deprecated"] = entry["deprecated"] and deprecated == "DEPRECATED"
        for fallback in fallbacks.split():
            # A deprecated fallback key is an old name of this option; a plain one is another option it defaults to.
            name, kind = fallback.rstrip(")").split("(")
            field = "replaces" if kind == "deprecated" else "falls_back_to"
            if name not in entry[field]:
                entry[field].append(name)
    path = OUT / f"{version}.json"
    document = {
        "flink_version": version,
        "recorded_from": f"apache-flink=={version} lib/flink-dist-{version}.jar by scripts/flink_options/record.py",
        "options": dict(sorted(options.items())),
    }
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    return path


if __name__ == "__main__":
    for release in sys.argv[1:] or list(SUPPORTED_FLINK_VERSIONS.values()):
        print(f"{release}: {record(release)}")
