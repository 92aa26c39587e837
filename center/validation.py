"""Every incoming payload checked against the JSON Schema it claims.

A payload's `schema` field names its file in `schemas/` (`tx-event.v1` is
`schemas/tx-event.v1.json`, read from the installed `posgw.schemas`
package). Each schema is compiled once per process into a Python function
(fastjsonschema), so a check costs a few microseconds, not a walk of the
schema per payload. Draft 2020-12 keywords our schemas use (`const`, `enum`,
`if`/`then`, `propertyNames`, type lists) mean the same in the draft 7 that
fastjsonschema implements.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from typing import Any

import fastjsonschema

from posgw.center.verify import BadPayload
from posgw.protocols.contract import SCHEMA_NAMES

Validator = Callable[[Any], Any]
#: A run of digits long enough to be part of a card number: masked in
#: reasons, which may name keys of the (untrusted) payload.
_LONG_DIGITS = re.compile(r"\d{7,}")


@functools.cache
def compiled_schemas() -> Mapping[str, Validator]:
    """Every contract schema, compiled (once per process)."""
    folder = resources.files("posgw.schemas")
    return {name: fastjsonschema.compile(json.loads((folder / f"{name}.json").read_text(
        encoding="utf-8"))) for name in SCHEMA_NAMES}


def check_against_schema(payload: Mapping[str, Any], accepted: Collection[str]) -> str:
    """The payload's schema name, once the payload matches that schema.

    Raises BadPayload (malformed) when the schema is not one of `accepted`
    here, or with the validator's message when the payload does not match.
    """
    name = payload.get("schema")
    if not isinstance(name, str) or name not in accepted:
        raise BadPayload(f"schema is not one of {', '.join(sorted(accepted))}")
    try:
        compiled_schemas()[name](payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise BadPayload(f"{name}: {_LONG_DIGITS.sub('[digits]', exc.message)}") from None
    return name
