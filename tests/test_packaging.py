"""What ``pip install memory-core`` installs, and what the bot pays for importing it (issue 13).

The sdist and the wheel are built from a copy of this checkout, the wheel from the sdist as
a package index would get them; both pass ``twine check``. The wheel holds the package and
its ``py.typed``, nothing of the dashboard or the tests, and requires only what the bot
needs: the CLI's tables, the dashboard, ``memory://`` demo stores and metrics are extras.
A fresh virtualenv with that wheel alone saves and loads a buyer on the suite's
redis-server without importing any extra, and its ``memory-core`` names the extra a
command lacks (exit 2). The wheel and the virtualenv are made once per session (about 5 s
to build and 7 to 11 s for the virtualenv here, plus 7 s for the ``[all]`` dry run); their
dependencies come from pip's index as configured, as for ``.ci/run``'s own installs.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
import redis
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from memory_core import SyncBuyerConversationMemory, cli, extras
from memory_core.crypto import KEYS_ENV, generate_key_pair
from memory_core.errors import MemoryCoreError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: What the bot needs: the whole of ``pip install memory-core``.
LEAN = {"redis", "zstandard", "orjson", "pyyaml", "cryptography"}
#: Each extra and the distributions it adds.
EXTRAS = {
    "cli": {"pandas", "tqdm"},
    "dashboard": {"streamlit", "altair", "pandas", "authlib", "fakeredis"},
    "demo": {"fakeredis"},
    "metrics": {"prometheus-client"},
    "all": {"memory-core"},
}
#: The top-level modules the extras install: none may be imported by the bot's modules.
EXTRA_MODULES = ("pandas", "numpy", "tqdm", "fakeredis", "lupa", "streamlit", "altair",
                 "authlib", "prometheus_client")
#: What the bot imports (and the CLI module itself, which must import on a bare install).
BOT_MODULES = ("memory_core", "memory_core.store", "memory_core.config",
               "memory_core.connection", "memory_core.crypto", "memory_core.errors",
               "memory_core.state", "memory_core.record", "memory_core.health",
               "memory_core.extras", "memory_core.cache_view", "memory_core.cli")
#: Not the package: never in the wheel.
NOT_SHIPPED = ("app.py", "dashboard/", "app_pages/", "tests/", "benchmarks/", "docs/")
#: Never copied to the build: the checkout's virtualenv, caches, builds and local secrets.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".*_cache",
                                     ".hypothesis", "*.egg-info", "build", "dist",
                                     ".streamlit", ".env")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python, the CLI or the memory at
    this checkout or this machine's Redis (pip's index settings stay)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "REDIS_URL")
           and not name.startswith("MEMORY_CORE_")}
    return {**env, **extra}


def _run(command: list[str], *, timeout: float, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else _clean_env(), cwd=cwd, check=False)


def _check(command: list[str], *, timeout: float, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` run to success, or a failure that shows its output."""
    result = _run(command, timeout=timeout, env=env, cwd=cwd)
    assert result.returncode == 0, (f"{' '.join(command)} exited {result.returncode}\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from a copy: the checkout gets no build/ from it."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    out = root / "dist"
    _check([sys.executable, "-m", "build", "--outdir", str(out), str(source)], timeout=240)
    return out


@pytest.fixture(scope="session")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("*.whl")
    return found


@pytest.fixture(scope="session")
def bare_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (no system site-packages) with the wheel alone: no extra."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    _check([sys.executable, "-m", "venv", str(venv)], timeout=120)
    _check([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
            "--disable-pip-version-check", str(wheel)], timeout=240)
    return venv


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.BytesParser().parsebytes(archive.read(name))


def _names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    built = sorted(str(path) for path in dist.iterdir())
    assert sorted(Path(p).suffix for p in built) == [".gz", ".whl"]
    result = _check([sys.executable, "-m", "twine", "check", "--strict", *built], timeout=120)
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_holds_the_package_and_its_py_typed_and_nothing_else(wheel: Path) -> None:
    version = PYPROJECT["version"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(f"memory_core-{version}.dist-info/entry_points.txt")
    assert {name.split("/")[0] for name in names} == {
        "memory_core", f"memory_core-{version}.dist-info"}
    assert "memory_core/py.typed" in names
    package = {path.relative_to(ROOT).as_posix() for path in (ROOT / "memory_core").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert package - set(names) == set(), "files of memory_core/ missing from the wheel"
    assert [n for n in names if n.startswith(NOT_SHIPPED)] == []
    assert b"memory-core = memory_core.cli:main" in entry_points


def test_the_wheel_requires_only_what_the_bot_needs_the_rest_are_extras(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["Name"] == "memory-core" and metadata["Version"] == PYPROJECT["version"]
    requires = [Requirement(text) for text in metadata.get_all("Requires-Dist", [])]
    base = [r for r in requires if r.marker is None]
    assert _names(base) == LEAN
    assert {str(r) for r in base} == set(PYPROJECT["dependencies"])  # bounds as declared
    assert next(r for r in base if r.name == "redis").extras == {"hiredis"}
    assert set(metadata.get_all("Provides-Extra", [])) == set(EXTRAS)
    for extra, names in EXTRAS.items():
        wanted = [r for r in requires if r.marker is not None
                  and r.marker.evaluate({"extra": extra})]
        assert _names(wanted) == names, extra
    (everything,) = [r for r in requires if r.marker is not None
                     and r.marker.evaluate({"extra": "all"})]
    assert everything.extras == set(EXTRAS) - {"all"}
    fakeredis = [r for r in requires if r.name == "fakeredis"]
    assert fakeredis and all(r.extras == {"lua"} for r in fakeredis)  # the store's Lua scripts


def _key(requirement: Requirement) -> tuple[str, frozenset[str], str]:
    return (canonicalize_name(requirement.name), frozenset(requirement.extras),
            str(requirement.specifier))


def test_requirements_txt_lists_the_library_and_every_extra_with_the_same_bounds() -> None:
    """.ci/run installs requirements-dev.txt (which includes requirements.txt), then the
    checkout with --no-deps: requirements.txt must hold every dependency of every extra."""
    declared = {_key(Requirement(text)) for text in PYPROJECT["dependencies"]}
    for extra in PYPROJECT["optional-dependencies"].values():
        declared |= {_key(r) for r in map(Requirement, extra) if r.name != "memory-core"}
    listed = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        text = line.partition("#")[0].strip()
        if text and not text.startswith("-"):
            listed.add(_key(Requirement(text)))
    assert listed == declared
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_the_cli_help_states_the_sample_range_that_sampling_enforces() -> None:
    from memory_core import sampling

    assert cli.SAMPLE_DRAWS == (sampling.MIN_DRAWS, sampling.MAX_DRAWS)


def test_importing_what_the_bot_uses_imports_no_extra_even_where_they_are_installed() -> None:
    """In this checkout's virtualenv, where every extra is installed: a fresh interpreter."""
    code = ("import importlib, json, sys\n"
            f"for name in {BOT_MODULES!r}: importlib.import_module(name)\n"
            f"print(json.dumps(sorted({{m.partition('.')[0] for m in sys.modules}} & "
            f"set({EXTRA_MODULES!r}))))")
    result = _check([sys.executable, "-c", code], timeout=60, cwd=ROOT)
    assert json.loads(result.stdout) == []


# extras.require and the CLI's use of it, in this process ---------------------------------

def test_require_returns_the_module_when_installed() -> None:
    assert extras.require("memory_core.state", "cli", "anything").__name__ == "memory_core.state"


def test_require_names_the_extra_that_brings_a_missing_module(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails as if absent
    with pytest.raises(extras.MissingExtra) as raised:
        extras.require("tqdm", "cli", "the progress bar")
    assert str(raised.value) == "the progress bar needs tqdm: pip install 'memory-core[cli]'"
    assert isinstance(raised.value, MemoryCoreError) and isinstance(raised.value, ImportError)
    assert raised.value.name == "tqdm" and raised.value.extra == "cli"


def test_require_names_the_package_a_user_knows_for_a_module_it_brings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # pandas' modules import numpy first
    with pytest.raises(extras.MissingExtra,
                       match=r"^the inventory needs pandas: pip install 'memory-core\[cli\]'$"):
        extras.require("numpy", "cli", "the inventory")


def test_require_leaves_a_module_no_extra_brings_to_fail_as_it_does() -> None:
    with pytest.raises(ModuleNotFoundError) as raised:  # a broken install, not an extra
        extras.require("memory_core.no_such_module", "cli", "anything")
    assert not isinstance(raised.value, extras.MissingExtra)
    with pytest.raises(ValueError, match="no extra named"):
        extras.require("memory_core.state", "cli-tools", "anything")


def test_a_memory_url_without_fakeredis_is_one_line_naming_the_demo_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "fakeredis", None)
    monkeypatch.delenv("MEMORY_CORE_CONFIG", raising=False)
    assert cli.main(["--redis-url", "memory://packaging", "show", "someone"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == ("error: a memory:// store needs fakeredis: "
                                       "pip install 'memory-core[demo]'\n")


def test_a_command_without_tqdm_stops_before_it_reads_or_writes(
        real_redis_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setenv(KEYS_ENV, generate_key_pair("pkg"))
    cli._whole_rate_bar.cache_clear()
    try:
        assert cli.main(["--redis-url", real_redis_url, "reencrypt", "--yes"]) == 2
    finally:
        cli._whole_rate_bar.cache_clear()  # built again with tqdm by the next user
    assert capsys.readouterr() == ("", "error: the progress bar needs tqdm: "
                                       "pip install 'memory-core[cli]'\n")


# the bare install: the wheel alone in a fresh virtualenv ---------------------------------

PROBE = """
import asyncio, importlib, importlib.util, json, sys

for name in {bot_modules!r}:
    importlib.import_module(name)
import memory_core
from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory

STATE = {{"buyer_temperature": "hot", "buyer_email": "pat@example.com",
          "conversation_history": [{{"role": "user", "content": "A 3-bed near a park?"}}]}}


def reply(state):
    state["conversation_history"].append({{"role": "assistant", "content": "Two of them."}})
    return state


async def bot(url):
    async with BuyerConversationMemory.from_url(url) as memory:
        saved = await memory.save_state("pkg-buyer", STATE)
        loaded = await memory.load_state("pkg-buyer")
        updated = await memory.update_state("pkg-buyer", reply)
        return saved, loaded, updated


saved, loaded, updated = asyncio.run(bot(sys.argv[1]))
with SyncBuyerConversationMemory.from_url(sys.argv[1]) as memory:
    again = memory.load_state("pkg-buyer")
print(json.dumps({{
    "file": memory_core.__file__, "version": memory_core.__version__,
    "saved": saved, "loaded": loaded, "updated": updated, "again": again,
    "imported": sorted({{m.partition(".")[0] for m in sys.modules}} & set({extra_modules!r})),
    "installed": [m for m in {extra_modules!r} if importlib.util.find_spec(m)],
}}, default=str))
"""


def test_the_bare_install_saves_and_loads_without_importing_any_extra(
        bare_venv: Path, real_redis_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The bot's round trip (async, encrypted, then the sync client) on the real server."""
    keys = generate_key_pair("pkg")
    code = PROBE.format(bot_modules=BOT_MODULES, extra_modules=EXTRA_MODULES)
    result = _check([str(bare_venv / "bin" / "python"), "-I", "-c", code, real_redis_url],
                    timeout=60, env=_clean_env(**{KEYS_ENV: keys}), cwd=tmp_path)
    found = json.loads(result.stdout)
    assert Path(found["file"]).is_relative_to(bare_venv)  # the wheel's, not the checkout's
    assert found["version"] == PYPROJECT["version"]
    assert found["imported"] == [] and found["installed"] == []
    assert found["saved"] is True
    assert found["loaded"]["buyer_temperature"] == "hot"
    assert found["loaded"]["state_revision"] == 1
    assert [m["content"] for m in found["updated"]["conversation_history"]] == [
        "A 3-bed near a park?", "Two of them."]
    assert found["again"]["state_revision"] == 2
    assert found["again"]["buyer_email"] == "pat@example.com"
    # What the wheel wrote, this checkout reads: encrypted under the key given.
    monkeypatch.setenv(KEYS_ENV, keys)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        record = memory.read_record("pkg-buyer")
    assert record is not None and record.summary is not None
    assert record.summary.key_id == "pkg" and record.revision == 2


def test_the_bare_install_cli_runs_and_names_the_extra_a_command_lacks(
        bare_venv: Path, real_redis_url: str) -> None:
    program = str(bare_venv / "bin" / "memory-core")
    cli_extra = "pip install 'memory-core[cli]'"
    for args, code, stdout, stderr in [
            (["--help"], 0, "usage: memory-core", ""),
            (["generate-key", "--key-id", "pkg"], 0, "pkg:", ""),
            (["--redis-url", real_redis_url, "show", "nobody"], 1, "", "no such buyer"),
            (["--redis-url", real_redis_url, "find", "--email", "pat@example.com"], 1, "",
             "no stored state has that email"),
            (["--redis-url", real_redis_url, "inventory"], 2, "",
             f"error: the inventory needs pandas: {cli_extra}"),
            (["--redis-url", real_redis_url, "inventory", "--sample", "500"], 2, "",
             f"inventory --sample needs pandas: {cli_extra}"),
            (["--redis-url", real_redis_url, "seed", "--count", "5"], 2, "",
             f"error: the seed command needs pandas: {cli_extra}"),
            (["--redis-url", real_redis_url, "reindex"], 2, "",
             f"error: the progress bar needs tqdm: {cli_extra}"),
            (["--redis-url", "memory://demo", "show", "nobody"], 2, "",
             "error: a memory:// store needs fakeredis: pip install 'memory-core[demo]'")]:
        result = _run([program, *args], timeout=60)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert stdout in result.stdout, (args, result.stdout)
        assert stderr in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") <= 1, (args, result.stderr)  # one line, no traceback
    with redis.Redis.from_url(real_redis_url) as client:
        assert list(client.scan_iter(match="*qa-*")) == []  # the refused seed wrote nothing
    module = _run([str(bare_venv / "bin" / "python"), "-I", "-m", "memory_core", "--help"],
                  timeout=60)
    assert module.returncode == 0 and "usage: memory-core" in module.stdout


def test_the_all_extra_resolves_to_every_extra(bare_venv: Path, wheel: Path,
                                               tmp_path: Path) -> None:
    """``memory-core[all]`` names the package's own extras; pip resolves it (dry run)."""
    report = tmp_path / "report.json"
    _check([str(bare_venv / "bin" / "python"), "-m", "pip", "install", "--dry-run",
            "--quiet", "--disable-pip-version-check", "--report", str(report),
            f"{wheel}[all]"], timeout=240)
    names = {canonicalize_name(item["metadata"]["name"])
             for item in json.loads(report.read_text())["install"]}
    assert set().union(*(EXTRAS[e] for e in ("cli", "dashboard", "demo", "metrics"))) <= names
    assert {"lupa", "numpy"} <= names  # fakeredis[lua], and pandas' own
