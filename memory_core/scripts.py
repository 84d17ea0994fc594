"""Server-side steps on one buyer key: check the stored revision and write in one step.

A revision check done by the client (read, compare, then write) leaves a gap in which
another bot worker can save; these Lua scripts close it, because Redis runs a script
without interleaving other commands. Each script touches only its one declared key, so it
stays valid on Redis Cluster.

The stored revision is read from the record header (:mod:`memory_core.record`) with
``GETRANGE``; whatever is not a readable header with a well-formed revision counts as 0,
exactly as :func:`memory_core.record.stored_revision` does, so a caller that found no
readable state can still replace it with ``expected_revision=0``.

Replies are ``{code, revision}``: code 1 done, 0 nothing there (delete, expire, and a
save that keeps the TTL),
-1 the revision did not match, -2 the key holds something that is not a QA seed, -3 the
stored record is encrypted under a key id the writer does not have.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from memory_core.record import HEADER_READ_BYTES, MAGIC, MAX_REVISION_DIGITS

DONE, ABSENT, CONFLICT, NOT_A_SEED, UNKNOWN_KEY = 1, 0, -1, -2, -3
#: The save script's TTL argument that keeps the key's own TTL (and writes only if it exists).
KEEP_TTL = "keep"

#: Shared by every script: what is stored at KEYS[1] (revision, QA flag, whether a value is
#: there). ``redis.pcall`` turns WRONGTYPE into a table: a key of another type exists,
#: counts as revision 0 and is no QA seed.
_INSPECT = f"""
local function inspect(key)
  local head = redis.pcall('GETRANGE', key, 0, {HEADER_READ_BYTES - 1})
  if type(head) ~= 'string' then return 0, false, true end
  if head == '' then return 0, false, false end
  if string.sub(head, 1, {len(MAGIC)}) ~= '{MAGIC.decode()}' then return 0, false, true end
  local stop = string.find(head, '\\n', {len(MAGIC) + 1}, true)
  if not stop then return 0, false, true end
  local fields = {{}}
  for field in string.gmatch(string.sub(head, {len(MAGIC) + 1}, stop - 1) .. '\\31',
                             '([^\\31]*)\\31') do
    fields[#fields + 1] = field
  end
  local qa = (#fields == 12 or #fields == 13) and fields[12] == '1'
  local revision = 0
  if #fields == 13 and #fields[13] <= {MAX_REVISION_DIGITS}
      and string.match(fields[13], '^%d+$') then
    revision = tonumber(fields[13])
  end
  local key_id = nil
  if #fields == 12 or #fields == 13 then
    key_id = string.match(fields[2], '^%a+%+([%w_-]+)$')
  end
  return revision, qa, true, key_id
end
local function matches(expected, revision)
  return expected == '' or tonumber(expected) == revision
end
"""

#: ARGV: expected revision ('' for any), TTL seconds (or 'keep': the key's own TTL, for
#: rewrites such as re-encryption), record head, record tail, 'seed' to write only over
#: nothing or a QA seed, and the key ids the writer can decrypt (space-separated). The
#: next revision goes between head and tail; it wraps before it would need more digits
#: than a header allows. A record encrypted under a key the writer does not have is never
#: replaced: during a rolling key rotation a worker without the new key would otherwise
#: read "no saved state" and overwrite the buyer's history with a fresh one.
_SAVE = _INSPECT + f"""
local revision, qa, exists, key_id = inspect(KEYS[1])
if key_id and not string.find(' ' .. ARGV[6] .. ' ', ' ' .. key_id .. ' ', 1, true) then
  return {{{UNKNOWN_KEY}, revision}}
end
if not matches(ARGV[1], revision) then return {{{CONFLICT}, revision}} end
if ARGV[5] == 'seed' and exists and not qa then return {{{NOT_A_SEED}, revision}} end
if ARGV[2] == '{KEEP_TTL}' and not exists then return {{{ABSENT}, 0}} end
if revision >= {10 ** MAX_REVISION_DIGITS - 1} then revision = 0 end
revision = revision + 1
local record = ARGV[3] .. string.format('%d', revision) .. ARGV[4]
if ARGV[2] == '{KEEP_TTL}' then
  redis.call('SET', KEYS[1], record, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], record, 'EX', ARGV[2])
end
return {{{DONE}, revision}}
"""

#: ARGV: expected revision ('' for any), and 'seed' to delete only a QA seed.
_DELETE = _INSPECT + f"""
local revision, qa, exists = inspect(KEYS[1])
if not exists then return {{{ABSENT}, 0}} end
if not matches(ARGV[1], revision) then return {{{CONFLICT}, revision}} end
if ARGV[2] == 'seed' and not qa then return {{{NOT_A_SEED}, revision}} end
redis.call('DEL', KEYS[1])
return {{{DONE}, revision}}
"""

#: ARGV: expected revision ('' for any), TTL seconds.
_EXPIRE = _INSPECT + f"""
local revision, qa, exists = inspect(KEYS[1])
if not exists then return {{{ABSENT}, 0}} end
if not matches(ARGV[1], revision) then return {{{CONFLICT}, revision}} end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {{{DONE}, revision}}
"""


@dataclass(frozen=True)
class Script:
    """A script's source and the SHA1 that ``EVALSHA`` names it by."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


SAVE = Script("save", _SAVE)
DELETE = Script("delete", _DELETE)
EXPIRE = Script("expire", _EXPIRE)


def expected_arg(expected_revision: int | None) -> str:
    """The script argument for an expected revision (empty: any revision)."""
    return "" if expected_revision is None else str(expected_revision)
