"""Validate flow's JSON output against the documented schemas (docs/schemas/), strictly: no field left undocumented."""

from __future__ import annotations

import copy
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "docs", "schemas")


def load(name: str) -> dict:
    with open(os.path.join(SCHEMAS, name), encoding="utf-8") as handle:
        return json.load(handle)


def strict(schema: dict) -> dict:
    """The schema with every object closed (additionalProperties false), so a field the docs do not name fails.

    The published schemas stay open (later versions may add fields); the tests hold the output to
    exactly what is documented. An object with `oneOf` branches is closed in each branch instead.
    """
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "oneOf" in node and "properties" in node:
                shared = node.pop("properties")
                for branch in node["oneOf"]:
                    branch["properties"] = {**shared, **branch.get("properties", {})}
            elif "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def validate(document, name: str) -> None:
    """Raise jsonschema.ValidationError when `document` does not follow docs/schemas/`name` exactly."""
    import jsonschema

    schema = strict(load(name))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
