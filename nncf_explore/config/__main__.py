"""Command line: regenerate the reference docs and the JSON Schema, or check config files.

Usage::

    python -m nncf_explore.config --write-docs docs/reference/config.md
    python -m nncf_explore.config --write-schema docs/reference/nncf_config.schema.json
    python -m nncf_explore.config my_config.json other.json
"""

from __future__ import annotations

import argparse
import json
import sys

from nncf_explore.config.jsonio import write_text_atomic
from nncf_explore.config.nncf_config import NNCFConfig
from nncf_explore.config.schema import build_json_schema, render_config_reference
from nncf_explore.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (1 if a config file is invalid)."""
    parser = argparse.ArgumentParser(
        prog="python -m nncf_explore.config", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write-docs", metavar="PATH", help="write the Markdown config reference")
    parser.add_argument("--write-schema", metavar="PATH", help="write the JSON Schema (draft-07)")
    parser.add_argument("configs", nargs="*", metavar="CONFIG", help="config files to validate")
    args = parser.parse_args(argv)
    if not (args.write_docs or args.write_schema or args.configs):
        parser.error("nothing to do: give --write-docs, --write-schema or config files")
    if args.write_docs:
        write_text_atomic(args.write_docs, render_config_reference())
    if args.write_schema:
        write_text_atomic(args.write_schema, json.dumps(build_json_schema(), indent=2) + "\n")
    status = 0
    for path in args.configs:
        try:
            NNCFConfig.from_json(path)
        except (ConfigError, OSError) as error:
            print(error, file=sys.stderr)
            status = 1
        else:
            print(f"{path}: OK")
    return status


if __name__ == "__main__":
    sys.exit(main())
