"""Find, read and check firmware profiles (the file side of protocols.profile).

A profile is named by its file stem among the shipped ones
(`firmware_profiles/*.toml`) or given as a path. `extends = "base"` pulls in
another profile first; the child's tables override the base's key by key.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.errors import SpecError
from posgw.protocols.profile import Profile, find_problems, merge_profiles
from posgw.protocols.tables import parse_toml

_MAX_EXTENDS_DEPTH = 8


def builtin_names() -> list[str]:
    """Names of the profiles shipped with posgw."""
    folder = resources.files("posgw.firmware_profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


@cache
def load_profile(name_or_path: str) -> Profile:
    """A validated Profile; raises SpecError (file, key, reason) on any problem."""
    table, source = _resolved_table(name_or_path, depth=0)
    return Profile.from_mapping(table, source)


_codecs: dict[tuple[str, str], Codec] = {}


def codec_for(profile: Profile) -> Codec:
    """One compiled codec per profile, shared by every session using it
    (compiling builds per-field tables: costly per connection, and memory
    that would grow with the number of terminals)."""
    key = (profile.name, profile.source)
    codec = _codecs.get(key)
    if codec is None:
        codec = _codecs[key] = Codec(profile.iso8583)
    return codec


def check_profile(name_or_path: str) -> list[SpecError]:
    """Every problem found in a profile, not just the first."""
    try:
        table, source = _resolved_table(name_or_path, depth=0)
    except SpecError as exc:
        return [exc]
    return find_problems(table, source)


def _resolved_table(name_or_path: str, depth: int) -> tuple[dict[str, Any], str]:
    text, source = _read(name_or_path)
    table = parse_toml(text, source, error=SpecError)
    base_name = table.get("profile", {}).get("extends")
    if base_name is None:
        return table, source
    if not isinstance(base_name, str) or depth >= _MAX_EXTENDS_DEPTH:
        raise SpecError("profile.extends", "must name a profile, without cycles", source)
    base, _ = _resolved_table(base_name, depth + 1)
    merged = merge_profiles(base, table)
    merged["profile"] = {k: v for k, v in table["profile"].items() if k != "extends"}
    return merged, source


def _read(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise SpecError("(file)", exc.strerror or "cannot read", str(path)) from None
    if name_or_path not in builtin_names():
        known = ", ".join(builtin_names())
        raise SpecError("(name)", f"no profile {name_or_path!r}; shipped: {known}", name_or_path)
    resource = resources.files("posgw.firmware_profiles") / f"{name_or_path}.toml"
    return resource.read_text(encoding="utf-8"), f"firmware_profiles/{name_or_path}.toml"
