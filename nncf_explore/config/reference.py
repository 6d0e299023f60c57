"""The Markdown reference page of the config, rendered from the field table.

Examples:
    >>> page = render_config_reference()
    >>> page.splitlines()[0]
    '# Configuration reference'
    >>> "`initializer.range.num_init_samples`" in page
    True
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

from nncf_explore.config.fields import CONFIG
from nncf_explore.config.spec import ArrayOf, Field, Json, MapOf, Obj, OneOf, Spec, Tagged, describe

_INTRO = """\
<!-- Generated from nncf_explore/config/fields.py by
     `python -m nncf_explore.config --write-docs docs/reference/config.md`. Do not edit by hand. -->

Every key an NNCF config may hold, with its type, default, allowed values and an example. The
validator, the defaults that the code reads, this page and the JSON Schema
(`docs/reference/nncf_config.schema.json`) are all generated from one table, so they agree.

- Configs are **strict JSON** in UTF-8: no comments and no trailing commas (NNCF >= 2.17 rejects
  them too), and no `NaN` or `Infinity` anywhere, even under unknown keys (JSON has none).
- **Unknown top-level keys are allowed** (training scripts keep `model`, `epochs`, ... there); a key
  that looks like a typo of a known one, or like an algorithm setting outside `compression`, gets a
  warning. **Algorithm sections reject unknown keys**, with a suggestion.
- Keys are written as paths: `a.b` is key `b` inside object `a`; `a[].b` is key `b` in each item of
  array `a`; `a.<scope>` is any key of a map. For a value that is "an object or an array of objects"
  the same keys apply to the object and to each array item.
- *Default* "—" means the key has no default: leaving it out means what its description says.
- Scope entries (`ignored_scopes`, `target_scopes`, `scope_overrides` keys) are exact node names,
  such as `ResNet/NNCFConv2d[conv1]/conv2d_0`, or regular expressions when they contain `{re}`
  (the marker is removed and the rest is matched with `re.search`). Regexes are checked when the
  config loads.
- `compression` holds at most one section per algorithm.
"""

_HEADER = "| Key | Type | Default | Allowed values | Example | Description |\n|---|---|---|---|---|---|"


def render_config_reference() -> str:
    """The whole reference page as Markdown."""
    parts = ["# Configuration reference\n", _INTRO, "## Top level\n", _section(CONFIG, "")]
    for key, field in CONFIG.fields.items():
        options = field.options if isinstance(field, OneOf) else (field,)
        for tagged in (o for o in options if isinstance(o, Tagged)):
            for name, option in tagged.options.items():
                parts.append(f'## `{key}`: `"{tagged.tag}": "{name}"`\n')
                parts.append(_section(option, tagged.tag, name))
    return "\n".join(parts).rstrip("\n") + "\n"


def _section(spec: Obj, tag: str, name: str = "") -> str:
    lines = [spec.description + "\n"] if spec.description else []
    if spec.example is not None:
        lines.append("```json\n" + pretty_json(spec.example) + "\n```\n")
    lines.append(_HEADER)
    if tag:
        lines.append(
            _row(f"`{tag}`", "string", "**required**", _code(name), _code(name), "Selects this section.")
        )
    lines.extend(_row(f"`{path}`", *_cells(spec, parent, key)) for path, key, spec, parent in _rows(spec, ""))
    return "\n".join(lines) + "\n"


def _rows(spec: Spec, prefix: str) -> Iterator[tuple[str, str, Spec, Obj | None]]:
    """``(path, key, spec, parent object)`` for every field below ``spec``, depth first."""
    for parent, item_prefix in _objects(spec, prefix):
        for key, child in parent.fields.items():
            path = f"{item_prefix}.{key}" if item_prefix else key
            yield path, key, child, parent
            if not isinstance(child, Tagged):
                yield from _rows(child, path)


def _objects(spec: Spec, prefix: str) -> Iterator[tuple[Obj, str]]:
    """The objects whose keys are listed under ``prefix``, each field listed once."""
    if isinstance(spec, Obj):
        yield spec, prefix
    elif isinstance(spec, ArrayOf):
        yield from _objects(spec.items, prefix + "[]")
    elif isinstance(spec, MapOf):
        yield from _objects(spec.values, prefix + ".<scope>")
    elif isinstance(spec, OneOf):
        seen: set[str] = set()
        for option in spec.options:
            inner = option.items if isinstance(option, ArrayOf) else option
            for obj, _ in _objects(inner, prefix):
                fresh = {k: v for k, v in obj.fields.items() if k not in seen}
                seen.update(fresh)
                yield Obj(fresh, required=obj.required), prefix


def _cells(spec: Spec, parent: Obj | None, key: str) -> tuple[str, str, str, str, str]:
    allowed = ", ".join(_code(v) for v in spec.enum) if isinstance(spec, Field) else ""
    description = spec.description + (" *Deprecated.*" if spec.deprecated else "")
    example = _code(spec.example) if spec.example is not None else ""
    return describe(spec, article=False), _default(spec, parent, key), allowed, example, description


def _default(spec: Spec, parent: Obj | None, key: str) -> str:
    if parent is not None and key in parent.required:
        return "**required**"
    if isinstance(spec, Field) and spec.default_by is not None:
        sibling, table = spec.default_by
        return "; ".join(f"{_code(v)} if `{sibling}` is {_code(k)}" for k, v in table.items())
    return _code(spec.default) if spec.default is not None else "—"


def pretty_json(value: Json, indent: str = "") -> str:
    """JSON with one key per line, but any value that fits in 70 columns kept on one line.

    Examples:
        >>> print(pretty_json({"input_info": {"sample_size": [1, 3, 224, 224]}, "epochs": 1}))
        {"input_info": {"sample_size": [1, 3, 224, 224]}, "epochs": 1}
    """
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= 70 or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {pretty_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + pretty_json(v, inner) for v in value) + "\n" + indent + "]"


def _code(value: Json) -> str:
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


_CODE_SPAN = re.compile(r"`([^`]*)`")


def _cell(text: str) -> str:
    """Text safe inside a table cell for both Python-Markdown (mkdocs) and GitHub.

    The two disagree on ``\\|`` inside a code span, so code spans holding a pipe become HTML
    ``<code>`` with ``&#124;``; pipes outside code are escaped.
    """

    def html_code(match: re.Match[str]) -> str:
        inner = match.group(1)
        if "|" not in inner:
            return match.group(0)
        return "<code>" + html.escape(inner, quote=False).replace("|", "&#124;") + "</code>"

    return _CODE_SPAN.sub(html_code, text).replace("|", "\\|")
