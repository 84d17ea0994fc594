"""Settings: defaults, the YAML section, environment overrides, and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_core.config import MemoryConfig, load_config, settings_table
from memory_core.errors import ConfigError

JORGE_BOTS_YAML = """\
seller_bot:
  enabled: true
  greeting: "Hi, thinking of selling?"
  conversation_memory:
    ttl_days: 2
buyer_bot:
  model: gpt-4o-mini
  max_turns: 40
  conversation_memory:
    ttl_days: 45
    compress_threshold_bytes: 2048
    max_history_messages: 20
    cache_key_prefix: jorge_buyer_memory
    socket_timeout_seconds: 1
    use_dictionary: false
analytics:
  sample_rate: 0.1
"""


def write_yaml(tmp_path: Path, text: str, name: str = "jorge_bots.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def section(body: str) -> str:
    indented = "".join(f"    {line}\n" for line in body.strip().splitlines())
    return "buyer_bot:\n  conversation_memory:\n" + indented


def test_defaults() -> None:
    config = load_config(env={})
    assert config == MemoryConfig()
    assert config.enabled is True
    assert config.ttl_days == 30
    assert config.ttl_seconds == 30 * 86_400
    assert (config.ttl_days_min, config.ttl_days_max) == (7, 90)
    assert config.ttl_max_seconds == 90 * 86_400
    assert config.compress_threshold_bytes == 256
    assert config.max_history_messages == 50
    assert config.cache_key_prefix == "buyer_conversation_memory"
    assert config.codec == "zstd"


def test_settings_table_lists_every_setting_with_its_default() -> None:
    table = {name: default for name, default, _doc in settings_table()}
    assert table["ttl_days"] == 30
    assert table["max_history_messages"] == 50
    # every field but the key material and what load_config derives: not settings
    assert set(table) == set(MemoryConfig.__dataclass_fields__) - {
        "keyring", "lookup_secret", "disabled_by"}


def test_loads_the_buyer_section_of_a_jorge_bots_yaml(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path, JORGE_BOTS_YAML), env={})
    assert config.ttl_days == 45  # not the seller bot's 2
    assert config.compress_threshold_bytes == 2048
    assert config.max_history_messages == 20
    assert config.cache_key_prefix == "jorge_buyer_memory"
    assert config.socket_timeout_seconds == 1
    assert config.use_dictionary is False
    assert config.zstd_level == MemoryConfig().zstd_level  # untouched settings keep defaults


@pytest.mark.parametrize("text", [
    "",
    "analytics:\n  sample_rate: 0.5\n",
    "buyer_bot:\n  model: x\n",
    "buyer_bot:\n  conversation_memory:\n",
])
def test_file_without_the_section_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write_yaml(tmp_path, text), env={}) == MemoryConfig()


def test_missing_file_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_config(missing, env={})
    assert str(missing) in str(info.value)


def test_invalid_yaml_raises(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "buyer_bot:\n  conversation_memory: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path, env={})


@pytest.mark.parametrize("text", [
    "- a list\n- at the top\n",
    "buyer_bot: just a string\n",
    "buyer_bot:\n  conversation_memory: [1, 2]\n",
])
def test_section_that_is_not_a_mapping_raises(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write_yaml(tmp_path, text), env={})


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, section("ttl_days: 30\nttl_dayz: 31"))
    with pytest.raises(ConfigError, match="unknown setting") as info:
        load_config(path, env={})
    assert "ttl_dayz" in str(info.value)
    assert "ttl_days" in str(info.value)  # the known settings are listed


@pytest.mark.parametrize(("body", "setting"), [
    ('ttl_days: "30"', "ttl_days"),
    ("ttl_days: true", "ttl_days"),
    ("ttl_days: 30.5", "ttl_days"),
    ("max_history_messages: false", "max_history_messages"),
    ('enabled: "yes please"', "enabled"),
    ("enabled: 1", "enabled"),
    ("socket_timeout_seconds: true", "socket_timeout_seconds"),
    ("cache_key_prefix: 12", "cache_key_prefix"),
])
def test_wrong_type_raises_naming_the_setting(tmp_path: Path, body: str, setting: str) -> None:
    with pytest.raises(ConfigError, match="wrong type") as info:
        load_config(write_yaml(tmp_path, section(body)), env={})
    assert setting in str(info.value)


def test_int_is_accepted_for_a_float_setting(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path, section("failure_cooldown_seconds: 5")), env={})
    assert config.failure_cooldown_seconds == 5


@pytest.mark.parametrize("ttl_days", [5, 91, 400])
def test_ttl_days_outside_policy_names_setting_value_and_range(
        tmp_path: Path, ttl_days: int) -> None:
    path = write_yaml(tmp_path, section(f"ttl_days: {ttl_days}"))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert f"ttl_days={ttl_days}" in message
    assert "7..90" in message


def test_ttl_days_range_follows_min_and_max(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, section("ttl_days: 3\nttl_days_min: 1\nttl_days_max: 5"))
    assert load_config(path, env={}).ttl_days == 3
    path = write_yaml(tmp_path, section("ttl_days: 6\nttl_days_min: 1\nttl_days_max: 5"))
    with pytest.raises(ConfigError, match=r"ttl_days=6 .*1\.\.5"):
        load_config(path, env={})


def test_ttl_min_above_max_raises(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, section("ttl_days_min: 60\nttl_days_max: 40\nttl_days: 50"))
    with pytest.raises(ConfigError, match="ttl_days_min=60 is greater than ttl_days_max=40"):
        load_config(path, env={})


@pytest.mark.parametrize(("body", "setting"), [
    ("max_state_bytes: 0", "max_state_bytes"),
    ("max_state_bytes: -10", "max_state_bytes"),
    ("max_history_messages: 0", "max_history_messages"),
    ("max_history_messages: -1", "max_history_messages"),
    ("compress_threshold_bytes: -1", "compress_threshold_bytes"),
    ("socket_timeout_seconds: 0", "socket_timeout_seconds"),
    ("failure_threshold: 0", "failure_threshold"),
    ("zstd_level: 0", "zstd_level"),
])
def test_non_positive_sizes_raise(tmp_path: Path, body: str, setting: str) -> None:
    with pytest.raises(ConfigError, match="outside the allowed range") as info:
        load_config(write_yaml(tmp_path, section(body)), env={})
    assert str(info.value).startswith(f"{setting}=")


@pytest.mark.parametrize("prefix", ["", "has space", "glob*", "q?", "br[a]"])
def test_bad_key_prefix_raises(prefix: str) -> None:
    with pytest.raises(ConfigError, match="cache_key_prefix"):
        MemoryConfig(cache_key_prefix=prefix)


def test_unknown_codec_raises() -> None:
    with pytest.raises(ConfigError, match="codec='lz4' is not allowed; choose one of zstd, none"):
        MemoryConfig(codec="lz4")


def test_payload_layout_is_packed_unless_json_is_asked_for(tmp_path: Path) -> None:
    assert MemoryConfig().packs_payloads
    path = write_yaml(tmp_path, "buyer_bot:\n  conversation_memory:\n    payload_layout: json\n")
    assert not load_config(path, env={}).packs_payloads
    assert not load_config(env={"MEMORY_CORE_PAYLOAD_LAYOUT": "json"}).packs_payloads
    with pytest.raises(ConfigError, match="payload_layout='columns' is not allowed; choose "
                                          "one of packed, json"):
        MemoryConfig(payload_layout="columns")


def test_replace_validates_like_the_original() -> None:
    config = MemoryConfig()
    assert config.replace(ttl_days=60).ttl_days == 60
    with pytest.raises(ConfigError):
        config.replace(ttl_days=0)


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, JORGE_BOTS_YAML)
    config = load_config(path, env={"MEMORY_CORE_TTL_DAYS": "60",
                                    "MEMORY_CORE_ENABLED": "false"})
    assert config.ttl_days == 60
    assert config.enabled is False
    assert config.max_history_messages == 20  # still from the file


@pytest.mark.parametrize(("raw", "expected"), [
    ("false", False), ("0", False), ("no", False), ("OFF", False),
    ("true", True), ("1", True), ("Yes", True), (" on ", True),
])
def test_env_bool_spellings(raw: str, expected: bool) -> None:
    assert load_config(env={"MEMORY_CORE_ENABLED": raw}).enabled is expected


def test_env_float_and_str_settings() -> None:
    config = load_config(env={"MEMORY_CORE_FAILURE_COOLDOWN_SECONDS": "0.25",
                              "MEMORY_CORE_CACHE_KEY_PREFIX": "staging_memory",
                              "MEMORY_CORE_CODEC": "none"})
    assert config.failure_cooldown_seconds == 0.25
    assert config.cache_key_prefix == "staging_memory"
    assert config.codec == "none"


def test_env_config_path_names_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, JORGE_BOTS_YAML)
    config = load_config(env={"MEMORY_CORE_CONFIG": str(path)})
    assert config.ttl_days == 45
    assert config.cache_key_prefix == "jorge_buyer_memory"


def test_explicit_path_wins_over_env_config_path(tmp_path: Path) -> None:
    env_file = write_yaml(tmp_path, section("ttl_days: 10"), "env.yaml")
    explicit = write_yaml(tmp_path, section("ttl_days: 20"), "explicit.yaml")
    assert load_config(explicit, env={"MEMORY_CORE_CONFIG": str(env_file)}).ttl_days == 20


def test_env_config_path_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(env={"MEMORY_CORE_CONFIG": str(tmp_path / "gone.yaml")})


def test_load_config_reads_os_environ_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_CORE_CONFIG", str(write_yaml(tmp_path, JORGE_BOTS_YAML)))
    monkeypatch.setenv("MEMORY_CORE_TTL_DAYS", "14")
    config = load_config()
    assert config.ttl_days == 14
    assert config.max_history_messages == 20


@pytest.mark.parametrize(("name", "raw", "kind"), [
    ("MEMORY_CORE_TTL_DAYS", "thirty", "int"),
    ("MEMORY_CORE_TTL_DAYS", "", "int"),
    ("MEMORY_CORE_TTL_DAYS", "30.5", "int"),
    ("MEMORY_CORE_ENABLED", "maybe", "bool"),
    ("MEMORY_CORE_SOCKET_TIMEOUT_SECONDS", "fast", "float"),
])
def test_bad_env_value_names_variable_value_and_type(name: str, raw: str, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={name: raw})
    assert str(info.value) == f"{name}={raw!r} is not a valid {kind}"


def test_env_value_out_of_range_raises() -> None:
    with pytest.raises(ConfigError, match=r"ttl_days=365 is outside the allowed range 7\.\.90"):
        load_config(env={"MEMORY_CORE_TTL_DAYS": "365"})


FEATURE_OFF_YAML = """
buyer_bot:
  name: Jorge
  reply_model: some-llm
  features:
    enable_conversation_memory: false
    enable_showings: true
  conversation_memory:
    ttl_days: 30
"""


def test_the_bots_feature_switch_turns_the_memory_off(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path, FEATURE_OFF_YAML), env={})
    assert config.enabled is False
    assert config.disabled_by == "buyer_bot.features.enable_conversation_memory"
    # either switch false means off, and both are named
    both = FEATURE_OFF_YAML.replace("ttl_days: 30", "enabled: false")
    assert load_config(write_yaml(tmp_path, both), env={}).disabled_by == (
        "buyer_bot.conversation_memory.enabled and "
        "buyer_bot.features.enable_conversation_memory")
    # the environment cannot switch on what the bot's feature switch turned off
    still_off = load_config(write_yaml(tmp_path, FEATURE_OFF_YAML),
                            env={"MEMORY_CORE_ENABLED": "true"})
    assert still_off.enabled is False
    on = FEATURE_OFF_YAML.replace("enable_conversation_memory: false",
                                  "enable_conversation_memory: true")
    assert load_config(write_yaml(tmp_path, on), env={}).enabled is True
    assert load_config(write_yaml(tmp_path, on),
                       env={"MEMORY_CORE_ENABLED": "0"}).disabled_by == "MEMORY_CORE_ENABLED"


def test_a_feature_switch_that_is_not_a_boolean_stops_start_up(tmp_path: Path) -> None:
    bad = FEATURE_OFF_YAML.replace("enable_conversation_memory: false",
                                   "enable_conversation_memory: maybe")
    with pytest.raises(ConfigError, match="enable_conversation_memory"):
        load_config(write_yaml(tmp_path, bad), env={})


def test_get_stats_says_which_setting_turned_the_memory_off(tmp_path: Path) -> None:
    from memory_core import SyncBuyerConversationMemory

    config = load_config(write_yaml(tmp_path, FEATURE_OFF_YAML), env={})
    with SyncBuyerConversationMemory.from_url("memory://feature-off", config) as memory:
        assert memory.save_state("c-1", {}) is False
        assert memory.load_state("c-1") is None
        stats = memory.get_stats()
    assert stats["enabled"] is False
    assert stats["disabled_by"] == "buyer_bot.features.enable_conversation_memory"
    assert MemoryConfig(enabled=False).disabled_by == "enabled=false"
    assert config.replace(enabled=True).disabled_by is None
