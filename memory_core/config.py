"""Settings for the buyer memory: one validated, immutable object built at start-up.

Settings come from the YAML section ``buyer_bot.conversation_memory`` (so an existing
``jorge_bots.yaml`` works unchanged), then ``MEMORY_CORE_<SETTING>`` environment
variables override single values. Anything invalid raises :class:`ConfigError` at
start-up, naming the setting, the value and what is allowed: a bad deploy should fail
loudly before the bot takes traffic, not corrupt records later.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memory_core.crypto import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    LOOKUP_KEY_ENV,
    Keyring,
    keyring_from_env,
    lookup_secret_from_env,
)
from memory_core.errors import ConfigError

CONFIG_PATH_ENV = "MEMORY_CORE_CONFIG"
ENV_PREFIX = "MEMORY_CORE_"
SECTION = ("buyer_bot", "conversation_memory")
#: The bot's own feature switch in the same file: false turns the memory off too.
FEATURE_SWITCH = ("buyer_bot", "features", "enable_conversation_memory")
CODECS = ("zstd", "none")
LAYOUT_PACKED = "packed"
LAYOUT_JSON = "json"


#: YAML names that look like key material: refused with a pointer to where keys go.
_SECRET_NAMES = ("encryption_keys", "encryption_key", "keys", "key", "keyring",
                 "lookup_key", "lookup_secret", "secret", "encryption")


def _setting(default: Any, doc: str, low: float | None = None, high: float | None = None,
             choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "low": low, "high": high,
                                            "choices": choices})


@dataclass(frozen=True)
class MemoryConfig:
    """Every setting of the buyer memory, with its default and allowed range."""

    enabled: bool = _setting(True, "Master switch; false makes every call a no-op.")
    ttl_days: int = _setting(30, "Days a buyer's state lives after its last save.", 1, 3650)
    ttl_days_min: int = _setting(7, "Lowest ttl_days the policy allows.", 1, 3650)
    ttl_days_max: int = _setting(90, "Highest ttl_days (and ttl_override) allowed.", 1, 3650)
    compress_threshold_bytes: int = _setting(
        256, "States whose JSON is larger than this are compressed (stored plain when "
        "compressing does not make them smaller).", 0, 64 * 1024 * 1024)
    max_history_messages: int = _setting(
        50, "Conversation history is trimmed to this many most recent messages.", 1, 10_000)
    cache_key_prefix: str = _setting(
        "buyer_conversation_memory", "Keys are <prefix>:<contact_id>.")
    max_state_bytes: int = _setting(
        1024 * 1024, "A state whose JSON is larger than this (after trimming) is refused.",
        1, 512 * 1024 * 1024)
    socket_timeout_seconds: float = _setting(
        0.5, "Redis read/write timeout; a slow Redis must not stall the bot.", 0.001, 60)
    socket_connect_timeout_seconds: float = _setting(
        0.5, "Redis connect timeout.", 0.001, 60)
    max_connections: int = _setting(
        1000, "Connections one memory opens to Redis at most; a call beyond that fails at "
        "once (redis-py's default of 100 refused the 101st of a burst).", 1, 100_000)
    codec: str = _setting("zstd", "Compression codec for large states.", choices=CODECS)
    zstd_level: int = _setting(3, "zstd compression level.", 1, 22)
    payload_layout: str = _setting(
        LAYOUT_PACKED, "What zstd compresses: 'packed' (the history split into streams, "
        "timestamps as deltas; smaller) or 'json' (readable by memory_core 1.0; use it "
        "until every bot and tool reading this store runs 1.1 or later).",
        choices=(LAYOUT_PACKED, LAYOUT_JSON))
    use_dictionary: bool = _setting(
        True, "Compress with the trained zstd dictionary when one is stored in Redis.")
    dictionary_id: int = _setting(
        0, "Pin writers to this stored dictionary id; 0 follows the current one in Redis.",
        0, 2**32 - 1)
    dictionary_refresh_seconds: float = _setting(
        60.0, "How often writers look for a newly trained dictionary.", 0, 86_400)
    failure_threshold: int = _setting(
        3, "Consecutive refused connections that open the circuit breaker (one timeout "
        "opens it at once).", 1, 1000)
    failure_cooldown_seconds: float = _setting(
        1.0, "While the breaker is open, how often a background probe asks Redis whether "
        "it answers again.", 0, 3600)
    health_publish_seconds: int = _setting(
        0, "Every this many seconds a memory writes its call counters (no PII) to "
        "<prefix>.health:<host>:<pid>:<id> for the dashboard's health panel, piggybacked on "
        "a save or load; 0 turns it off.", 0, 86_400)
    # Key material: never a setting, never in a repr, a comparison or the settings table.
    #: Encryption keys from MEMORY_CORE_ENCRYPTION_KEYS(_FILE); None leaves payloads clear.
    keyring: Keyring | None = field(default=None, repr=False, compare=False,
                                    metadata={"secret": True})
    #: The HMAC secret of the phone/email lookup; None keeps no lookup.
    lookup_secret: bytes | None = field(default=None, repr=False, compare=False,
                                        metadata={"secret": True})
    #: Which setting turned the memory off (for get_stats); None while enabled. Derived
    #: by load_config, not a setting of its own.
    disabled_by: str | None = field(default=None, compare=False, metadata={"derived": True})

    def __post_init__(self) -> None:
        for f in _settings():
            _check_value(f, getattr(self, f.name))
        if self.enabled and self.disabled_by is not None:
            raise ConfigError("disabled_by is set, but enabled is true")
        if not self.enabled and self.disabled_by is None:
            object.__setattr__(self, "disabled_by", "enabled=false")
        if self.keyring is not None and not isinstance(self.keyring, Keyring):
            raise ConfigError("keyring must be a memory_core.crypto.Keyring (see "
                              f"{KEYS_ENV})")
        if self.lookup_secret is not None and (not isinstance(self.lookup_secret, bytes)
                                               or len(self.lookup_secret) < 16):
            raise ConfigError("lookup_secret must be at least 16 bytes (see "
                              f"{LOOKUP_KEY_ENV})")
        if self.ttl_days_min > self.ttl_days_max:
            raise ConfigError(
                f"ttl_days_min={self.ttl_days_min} is greater than ttl_days_max="
                f"{self.ttl_days_max}; set ttl_days_min <= ttl_days_max")
        if not self.ttl_days_min <= self.ttl_days <= self.ttl_days_max:
            raise ConfigError(
                f"ttl_days={self.ttl_days} is outside the allowed range "
                f"{self.ttl_days_min}..{self.ttl_days_max} days (ttl_days_min..ttl_days_max)")
        if not self.cache_key_prefix or any(c in self.cache_key_prefix
                                            for c in " \t\r\n*?[]\\"):
            raise ConfigError(
                f"cache_key_prefix={self.cache_key_prefix!r} must be a non-empty string "
                "without whitespace, backslashes or glob characters (* ? [ ])")

    @property
    def ttl_seconds(self) -> int:
        return self.ttl_days * 86_400

    @property
    def packs_payloads(self) -> bool:
        """Whether zstd compresses the packed layout (see ``payload_layout``)."""
        return self.payload_layout == LAYOUT_PACKED

    @property
    def ttl_max_seconds(self) -> int:
        return self.ttl_days_max * 86_400

    def replace(self, **changes: Any) -> MemoryConfig:
        """A copy with some settings changed, validated like the original."""
        if "enabled" in changes and "disabled_by" not in changes:
            changes["disabled_by"] = None  # re-derived: "enabled=false" when switched off
        return dataclasses.replace(self, **changes)


_KINDS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


def _settings() -> list[dataclasses.Field[Any]]:
    """The fields that are settings (not key material)."""
    return [f for f in dataclasses.fields(MemoryConfig)
            if not (f.metadata.get("secret") or f.metadata.get("derived"))]


def _kind(f: dataclasses.Field[Any]) -> type:
    """The Python type of a setting (annotations are strings under __future__)."""
    return f.type if isinstance(f.type, type) else _KINDS[str(f.type)]


def _check_value(f: dataclasses.Field[Any], value: Any) -> None:
    expected = _kind(f)
    meta = f.metadata
    ok_type = isinstance(value, expected) and not (expected is not bool
                                                   and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok_type = True
    if not ok_type:
        raise ConfigError(
            f"{f.name}={value!r} has the wrong type: expected {expected.__name__}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{f.name}={value!r} is not allowed; choose one of "
                          f"{', '.join(meta['choices'])}")
    low, high = meta["low"], meta["high"]
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{f.name}={value!r} is outside the allowed range {low}..{high}")


def settings_table() -> list[tuple[str, Any, str]]:
    """(name, default, description) for every setting, for docs and the dashboard."""
    return [(f.name, f.default, f.metadata["doc"]) for f in _settings()]


def _parse_env_value(name: str, kind: type, raw: str) -> Any:
    text = raw.strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def _read_document(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None


def _feature_switch(document: Any, path: Path) -> bool | None:
    """``buyer_bot.features.enable_conversation_memory``: None when the file has none.

    The rest of ``buyer_bot`` (the bot's other settings) is none of this package's business
    and is never checked.
    """
    node: Any = document
    for part in FEATURE_SWITCH:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if not isinstance(node, bool):
        raise ConfigError(f"config file {path}: '{'.'.join(FEATURE_SWITCH)}' must be true or "
                          f"false, not {node!r}")
    return node


def _read_section(path: Path, document: Any) -> dict[str, Any]:
    section: Any = document if document is not None else {}
    for part in SECTION:
        if not isinstance(section, Mapping):
            raise ConfigError(f"config file {path}: expected a mapping at "
                              f"'{'.'.join(SECTION)}'")
        section = section.get(part, {})
        if section is None:
            section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"config file {path}: '{'.'.join(SECTION)}' must be a mapping")
    return dict(section)


def default_config(env: Mapping[str, str] | None = None) -> MemoryConfig:
    """The defaults, with the encryption keys and lookup secret of the environment.

    What a memory built without a config uses: a bot that has keys in its environment
    never writes a buyer in the clear because it left out ``config=load_config()``.
    """
    env = os.environ if env is None else env
    keyring = keyring_from_env(env)
    return MemoryConfig(keyring=keyring, lookup_secret=lookup_secret_from_env(env, keyring))


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> MemoryConfig:
    """Build the settings from a YAML file (optional), then environment overrides.

    With no ``path``, ``MEMORY_CORE_CONFIG`` names the file; with neither, the defaults
    apply. Raises :class:`ConfigError` on any unknown or invalid setting.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_PATH_ENV):
        path = env[CONFIG_PATH_ENV]
    document = _read_document(Path(path)) if path is not None else None
    values: dict[str, Any] = _read_section(Path(path), document) if path is not None else {}
    switched_off = path is not None and _feature_switch(document, Path(path)) is False
    secrets_given = sorted(str(name) for name in values if str(name).lower() in _SECRET_NAMES)
    if secrets_given:
        raise ConfigError(
            f"{', '.join(secrets_given)} in '{'.'.join(SECTION)}': keys are never read from "
            f"the YAML file; put them in {KEYS_ENV} (or a file named by {KEYS_FILE_ENV}) and "
            f"the lookup secret in {LOOKUP_KEY_ENV}, then remove them from the file")
    fields = {f.name: f for f in _settings()}
    unknown = sorted(str(name) for name in set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in "
                          f"'{'.'.join(SECTION)}'; known settings: {', '.join(fields)}")
    for name, f in fields.items():
        raw = env.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None:
            values[name] = _parse_env_value(name, _kind(f), raw)
    # either switch false means off; say which one(s) did it
    off = [name for name, is_off in (
        (f"{ENV_PREFIX}ENABLED", env.get(f"{ENV_PREFIX}ENABLED") is not None
         and values.get("enabled") is False),
        (f"{'.'.join(SECTION)}.enabled", env.get(f"{ENV_PREFIX}ENABLED") is None
         and values.get("enabled") is False),
        (".".join(FEATURE_SWITCH), switched_off)) if is_off]
    if off:
        values["enabled"] = False
    keyring = keyring_from_env(env)
    return MemoryConfig(**values, keyring=keyring,
                        lookup_secret=lookup_secret_from_env(env, keyring),
                        disabled_by=" and ".join(off) or None)
