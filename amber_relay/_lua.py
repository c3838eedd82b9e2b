"""The store's Lua scripts: the writes that must agree, each atomic in Redis.

Used by :mod:`amber_relay.store` only (which holds the key names they use).
"""

from __future__ import annotations

__all__ = ["APPLY", "CAP", "EXPIRE", "SUBMIT", "SWEEP"]

# Lifetimes (see docs/operations.md "Keys and their lifetimes"). Everything written
# for an alert lives while the alert may still be shown, then ``retention`` seconds:
# ``retain`` sets that TTL on the alert's own keys (meta, versions, stats and the keys
# listed in ``P keys:<id>``: idempotency answers, CAP links). Photos are shared by
# content hash, so each counts its users (``media:<sha>:users``): it has no TTL while
# an active alert shows it and gets ``retention`` when the last one ends.
_LIB = """
local function ttl_until(expires, retention)
  local now = tonumber(redis.call('TIME')[1])
  local t = math.ceil(tonumber(expires) - now)
  if t < 1 then t = 1 end
  return t + retention
end
local function retain(prefix, id, ttl)
  local meta = prefix .. 'alert:' .. id
  local owned = prefix .. 'keys:' .. id
  local latest = tonumber(redis.call('HGET', meta, 'latest') or '0')
  for v = 1, latest do redis.call('EXPIRE', meta .. ':v' .. v, ttl) end
  for _, k in ipairs(redis.call('SMEMBERS', owned)) do redis.call('EXPIRE', k, ttl) end
  redis.call('EXPIRE', owned, ttl)
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', prefix .. 'stats:' .. id, ttl)
end
local function use_media(prefix, id, shas)
  local uses = prefix .. 'uses:' .. id
  for _, sha in ipairs(shas) do
    local m = prefix .. 'media:' .. sha
    redis.call('SADD', m .. ':users', id)
    redis.call('PERSIST', m)
    redis.call('PERSIST', m .. ':type')
    redis.call('SADD', uses, sha)
  end
end
local function release_media(prefix, id, ttl)
  local uses = prefix .. 'uses:' .. id
  for _, sha in ipairs(redis.call('SMEMBERS', uses)) do
    local m = prefix .. 'media:' .. sha
    redis.call('SREM', m .. ':users', id)
    if redis.call('SCARD', m .. ':users') == 0 then
      redis.call('EXPIRE', m, ttl)
      redis.call('EXPIRE', m .. ':type', ttl)
    end
  end
  redis.call('DEL', uses)
end
local function ended(prefix, id, reason)
  redis.call('HSET', prefix .. 'ended', id, reason)
  redis.call('ZADD', prefix .. 'ended_at', tonumber(redis.call('TIME')[1]), id)
end
"""

# Assign the next version to a submission, unless this exact submission was seen.
# Returns {version, existing(0/1), state}; version -1 = refused (see state).
SUBMIT = (
    _LIB
    + """
local sub, meta = KEYS[1], KEYS[2]
local agency, kind, payload, vprefix, retention, prefix, id, expires =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local received = tonumber(ARGV[9])
local seen = redis.call('HGET', sub, 'version')
if seen then
  return {tonumber(seen), 1, redis.call('HGET', sub, 'status') or 'queued'}
end
local owner = redis.call('HGET', meta, 'agency')
if owner and owner ~= agency then return {-1, 0, 'owned'} end
if redis.call('HGET', meta, 'cancelled') == '1' then return {-1, 0, 'cancelled'} end
if kind == 'cancel' and not owner then return {-1, 0, 'unknown'} end
local v = redis.call('HINCRBY', meta, 'latest', 1)
redis.call('HSET', meta, 'agency', agency)
if kind == 'cancel' then redis.call('HSET', meta, 'cancelled', '1') end
redis.call('SET', vprefix .. v, payload)
redis.call('HSET', sub, 'version', v, 'status', 'queued')
redis.call('SADD', prefix .. 'keys:' .. id, sub)
-- The agency's own list (the console's GET /v1/alerts?state=), trimmed to the retention.
local listing = KEYS[3]
redis.call('ZADD', listing, received, id)
redis.call('ZREMRANGEBYSCORE', listing, '-inf', received - retention)
redis.call('EXPIRE', listing, retention)
-- Kept until the version's expiry plus retention (a cancel: retention), so even a
-- version never applied (its job lost) does not stay for ever.
local ttl = retention
if expires ~= '' then ttl = ttl_until(expires, retention) end
retain(prefix, id, ttl)
return {v, 0, 'queued'}
"""
)

# Apply a version: publish (record given) or clear (reason given). Versions at or
# below the applied one are ignored, so a replayed or reordered job changes nothing.
APPLY = (
    _LIB
    + """
local meta, active, expiries, ended_h, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, v, record, expires, reason, event, maxlen, state, prefix, retention =
  ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], tonumber(ARGV[10])
local applied = tonumber(redis.call('HGET', meta, 'applied') or '0')
if applied >= v then return 0 end
redis.call('HSET', meta, 'applied', v, 'state', state)
if record ~= '' then
  redis.call('HSET', active, id, record)
  redis.call('ZADD', expiries, expires, id)
  redis.call('HDEL', ended_h, id)
  redis.call('ZREM', prefix .. 'ended_at', id)
  use_media(prefix, id, {unpack(ARGV, 11)})
  retain(prefix, id, ttl_until(expires, retention))
elseif reason ~= '' then
  redis.call('HDEL', active, id)
  redis.call('ZREM', expiries, id)
  ended(prefix, id, reason)
  release_media(prefix, id, retention)
  retain(prefix, id, retention)
else
  -- stored, not public (test, exercise...): kept until its expiry plus retention
  retain(prefix, id, ttl_until(expires, retention))
end
if event ~= '' then
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event)
end
return 1
"""
)

# Expire one alert if it is still due (an update may have moved its expiry).
EXPIRE = (
    _LIB
    + """
local meta, active, expiries, ended_h, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now, event, maxlen, prefix, retention =
  ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local score = redis.call('ZSCORE', expiries, id)
if not score or tonumber(score) > now then return 0 end
redis.call('ZREM', expiries, id)
redis.call('HDEL', active, id)
ended(prefix, id, 'expired')
redis.call('HSET', meta, 'state', 'expired')
release_media(prefix, id, retention)
retain(prefix, id, retention)
redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', event)
return 1
"""
)

# Remember a CAP link; it lives as long as the alert's other keys.
CAP = """
local cap, owned, meta = KEYS[1], KEYS[2], KEYS[3]
local id, retention = ARGV[1], tonumber(ARGV[2])
redis.call('SET', cap, id)
redis.call('SADD', owned, cap)
local ttl = redis.call('TTL', meta)
if ttl < 1 then ttl = retention end
redis.call('EXPIRE', cap, ttl)
redis.call('EXPIRE', owned, ttl)
"""

# Forget the end markers of alerts that ended more than ``retention`` ago.
SWEEP = """
local ended_h, ended_at = KEYS[1], KEYS[2]
local before, limit = ARGV[1], tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', ended_at, '-inf', before, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('HDEL', ended_h, id)
  redis.call('ZREM', ended_at, id)
end
return #ids
"""
