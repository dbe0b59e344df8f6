"""The Lua scripts of ``RedisStore``: each operation is one script, so each is atomic.

Every script takes the namespace's key prefix as ``KEYS[1]`` (the other keys
are made from it; they share its ``{hash tag}``, so one namespace lives in
one Redis Cluster slot) and the time as ``ARGV[1]``: the caller's clock, or
empty for the server's own (``TIME``), which every process then shares.

``KEYS[2]``, when given, names the call (a fresh token each): its answer is
kept there a while, and the same call run again (a client retrying after
the connection dropped, the first run's answer lost) gets that answer back
instead of running twice (a second run would refuse its own write, take a
new fence, lease again). A script finding the store's options gone (the
store emptied under it) runs nothing and answers ``MEDIAXNOCONF``: the caller
writes them again and calls once more.

A watched job is one field of the ``jobs`` hash, a small JSON array
(``REC_*`` below gives the positions), one member of the ``due`` sorted set
(scored by its next poll time) and, with a batch tag, one member of that
tag's set. Numbers leave a script as strings: Redis truncates Lua numbers
to integers on the way out.
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "APPLY",
    "BEGIN_SUBMISSION",
    "CLAIM",
    "CLAIM_SUBMISSIONS",
    "END_SUBMISSION",
    "FINISH_SUBMISSION",
    "NOTIFY",
    "PAUSE",
    "READ_GROUP",
    "UNWATCH",
    "WATCH",
]

_PRELUDE = r"""
local P = KEYS[1]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local DUE, JOBS, OUT, OUTZ = P .. 'due', P .. 'jobs', P .. 'out', P .. 'outz'
local NEWS, NEWSZ, PAUSE, RES = P .. 'news', P .. 'newsz', P .. 'pause', P .. 'res'
local SUB, ORPH, CREATED = P .. 'sub', P .. 'orph', P .. 'created'
local CONF = cjson.decode(redis.call('GET', P .. 'conf') or '{}')
local RECENT = CONF.recent or 10000
local NEWS_KEEP, NEWS_AGE = CONF.news or 10000, CONF.news_age or 900
local RESULTS_MAX = CONF.results or 1000000
local RESULTS_HARD = math.max(RESULTS_MAX, CONF.results_hard or 1000000)
local KEEP_CREATED = CONF.created or 100000

-- a record: {fence, lease_until, polls, failures, state, kind, tag, started, notified, key, parked}
local function rec_get(id)
  local v = redis.call('HGET', JOBS, id)
  if v then return cjson.decode(v) end
  return nil
end
local function rec_put(id, r) redis.call('HSET', JOBS, id, cjson.encode(r)) end
local function tag_add(id, tag)
  if tag ~= '' then redis.call('SADD', P .. 'tm:' .. tag, id) end
end
local function tag_remove(id, tag)
  if tag ~= '' then
    local members = P .. 'tm:' .. tag
    redis.call('SREM', members, id)
    if redis.call('SCARD', members) == 0 then redis.call('DEL', members, P .. 'tg:' .. tag) end
  end
end
local function trim(zset, hash, keep)
  local over = redis.call('ZCARD', zset) - keep
  if over > 0 then
    for _, id in ipairs(redis.call('ZPOPMIN', zset, over)) do
      redis.call('HDEL', hash, id)
    end
  end
end
local function zpop_ids(zset, over)
  local popped = redis.call('ZPOPMIN', zset, over)
  local ids = {}
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  return ids
end
local function id_before(a, b)  -- stream ids 'ms-seq', compared as numbers
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms < b_ms or (a_ms == b_ms and tonumber(a_seq) < tonumber(b_seq))
end
-- the oldest results entry some consumer group still needs: delivered and not acknowledged,
-- or not delivered yet (nil: none)
local function needed_by_groups()
  local needed = nil
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', RES)) do
    local g = {}
    for i = 1, #info, 2 do g[info[i]] = info[i + 1] end
    local first = nil
    if tonumber(g['pending']) > 0 then
      first = redis.call('XPENDING', RES, g['name'])[2]
    elseif g['lag'] ~= 0 then  -- false when Redis cannot tell: look
      local after = redis.call('XRANGE', RES, '(' .. g['last-delivered-id'], '+', 'COUNT', 1)
      if #after > 0 then first = after[1][1] end
    end
    if first and (not needed or id_before(first, needed)) then needed = first end
  end
  return needed
end
-- keep RESULTS_MAX entries, and past that what a group still needs, up to RESULTS_HARD
-- (a group nobody reads any more must not hold every entry for ever)
local function trim_results()
  local over = redis.call('XLEN', RES) - RESULTS_MAX
  if over <= 0 then return end
  local needed = needed_by_groups()
  if not needed then
    redis.call('XTRIM', RES, 'MAXLEN', RESULTS_MAX)
    return
  end
  if over > RESULTS_HARD - RESULTS_MAX then
    redis.call('XTRIM', RES, 'MAXLEN', RESULTS_HARD)
    over = RESULTS_HARD - RESULTS_MAX
  end
  -- the oldest entries, before the first one a group needs (a thousand at a time)
  local unneeded = redis.call('XRANGE', RES, '-', '(' .. needed, 'COUNT', math.min(over, 1000))
  if #unneeded > 0 then
    local kept = redis.call('XRANGE', RES, '(' .. unneeded[#unneeded][1], '+', 'COUNT', 1)
    redis.call('XTRIM', RES, 'MINID', kept[1][1])
  end
end
local function record_outcome(id, key, body)
  redis.call('HSET', OUT, id, cjson.encode({key, body}))
  redis.call('ZADD', OUTZ, now, id)
  local over = redis.call('ZCARD', OUTZ) - RECENT
  if over > 0 then
    for _, old in ipairs(zpop_ids(OUTZ, over)) do redis.call('HDEL', OUT, old) end
  end
  redis.call('XADD', RES, '*', 'i', id, 'k', key, 'b', body)
  trim_results()
end
local function news_pop(id)
  local at = redis.call('ZSCORE', NEWSZ, id)
  if not at then return nil end
  local news = redis.call('HGET', NEWS, id)
  redis.call('ZREM', NEWSZ, id)
  redis.call('HDEL', NEWS, id)
  if now - tonumber(at) > NEWS_AGE then return nil end
  return news
end
local function news_put(id, news)
  redis.call('HSET', NEWS, id, news)
  redis.call('ZADD', NEWSZ, now, id)
  local over = redis.call('ZCARD', NEWSZ) - NEWS_KEEP
  if over > 0 then
    for _, old in ipairs(zpop_ids(NEWSZ, over)) do redis.call('HDEL', NEWS, old) end
  end
end
-- watch one job: {id, delay, tag, kind, state, key}; 0, {1, outcome} or {2, news}
local function watch_one(w)
  local id = w[1]
  local r = rec_get(id)
  if r then
    if r[11] == 1 then
      r[11] = 0
      tag_add(id, r[7])
      local due = now + w[2]
      if r[9] == 1 then due = now end
      redis.call('ZADD', DUE, due, id)
      rec_put(id, r)
    elseif not redis.call('ZSCORE', DUE, id) then  -- its due time was lost (an eviction)
      tag_add(id, r[7])
      redis.call('ZADD', DUE, now, id)
    end
    return 0
  end
  local settled = redis.call('HGET', OUT, id)
  if settled then return {1, settled} end
  r = {0, -1, 0, 0, w[5], w[4], w[3], now, 0, w[6], 0}
  local news = news_pop(id)
  local due = now + w[2]
  if news and not cjson.decode(news).settles then  -- news that settles is the caller's
    r[9] = 1
    due = now
  end
  rec_put(id, r)
  tag_add(id, r[7])
  redis.call('ZADD', DUE, due, id)
  if news then return {2, news} end
  return 0
end
"""

WATCH = (
    _PRELUDE
    + r"""
local out = {}
for i = 2, #ARGV do out[#out + 1] = watch_one(cjson.decode(ARGV[i])) end
return out
"""
)

CLAIM = (
    _PRELUDE
    + r"""
local limit, lease, worth_jobs = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function next_due()
  local first = redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')
  if #first == 0 then return '' end
  return tostring(math.max(0, tonumber(first[2]) - now))
end
local paused = tonumber(redis.call('GET', PAUSE) or '-1')
if paused > now then return {tostring(paused - now), next_due()} end
local function lease_rec(id, r)
  r[1] = r[1] + 1
  r[2] = now + lease
  local notified = r[9]
  r[9] = 0
  rec_put(id, r)
  redis.call('ZADD', DUE, r[2], id)
  return {id, r[1], r[3], r[4], r[5], r[6], r[7], tostring(now - r[8]), notified, r[10]}
end
local claims = {}
while #claims < limit do
  local ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'LIMIT', 0, limit - #claims)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if #claims >= limit then break end
    local score = redis.call('ZSCORE', DUE, id)
    local r = rec_get(id)
    if not r then
      redis.call('ZREM', DUE, id)
    elseif tonumber(score) <= now then  -- not leased already, as a member of a tag just claimed
      local tag, worth = r[7], false
      local tag_key = P .. 'tg:' .. tag
      if tag ~= '' and r[9] == 0 then
        local members = redis.call('SCARD', P .. 'tm:' .. tag)
        local listed = tonumber(redis.call('HGET', tag_key, 'l') or '0')
        worth = members >= 2 and members * worth_jobs >= listed
      end
      local tag_lease = -1
      if worth then tag_lease = tonumber(redis.call('HGET', tag_key, 'lu') or '-1') end
      -- Being listed without it (watched since): that answer does not reschedule it,
      -- so it is asked for by id; it joins the tag's next round.
      if not worth or tag_lease > now then
        claims[#claims + 1] = {'', 0, lease_rec(id, r)}
      else
        local fence = redis.call('HINCRBY', tag_key, 'f', 1)
        redis.call('HSET', tag_key, 'lu', tostring(now + lease))
        local claim = {tag, fence, lease_rec(id, r)}
        for _, member in ipairs(redis.call('SMEMBERS', P .. 'tm:' .. tag)) do
          if member ~= id then
            local m = rec_get(member)
            if m and m[2] <= now then claim[#claim + 1] = lease_rec(member, m) end
          end
        end
        claims[#claims + 1] = claim
      end
    end
  end
end
local out = {'0', next_due()}
for _, claim in ipairs(claims) do out[#out + 1] = claim end
return out
"""
)

# A submission: SUB[key] = {custom_id, request (JSON text, '' once created), job_id or '',
# fence, lease_until, attempts}; ORPH scores unresolved ones by lease end.
_SUBMISSIONS = r"""
local function sub_get(key)
  local v = redis.call('HGET', SUB, key)
  if v then return cjson.decode(v) end
  return nil
end
local function sub_put(key, s) redis.call('HSET', SUB, key, cjson.encode(s)) end
local function sub_lease(key, s, lease, status)
  local attempts = s[6]
  s[6] = s[6] + 1
  s[4] = s[4] + 1
  s[5] = now + lease
  redis.call('ZADD', ORPH, s[5], key)
  sub_put(key, s)
  return {status, s[4], '', attempts, key, s[1], s[2]}
end
local function sub_held(key, fence)
  local s = sub_get(key)
  if not s or s[3] ~= '' or s[4] ~= fence or now > s[5] then return nil end
  return s
end
local function sub_forget(key)
  local s = sub_get(key)
  if not s then return end
  redis.call('HDEL', SUB, key)
  redis.call('ZREM', ORPH, key)
  redis.call('ZREM', CREATED, key)
  if s[3] ~= '' then
    local attributed = P .. 'attr:' .. s[1]
    redis.call('SREM', attributed, s[3])
  end
end
-- a created submission's job settled: only now does it count among the KEEP_CREATED kept
-- (forgotten while its job runs, it would be sent again: a second job)
local function sub_settled(key)
  local s = sub_get(key)
  if not s or s[3] == '' then return end
  redis.call('ZADD', CREATED, now, key)
  local over = redis.call('ZCARD', CREATED) - KEEP_CREATED
  if over > 0 then
    for _, old in ipairs(zpop_ids(CREATED, over)) do sub_forget(old) end
  end
end
"""

APPLY = (
    _PRELUDE
    + _SUBMISSIONS
    + r"""
local function held(id, fence)
  local r = rec_get(id)
  if not r or r[1] ~= fence or now > r[2] then return nil end
  return r
end
local out = {}
for i = 2, #ARGV do
  local u = cjson.decode(ARGV[i])
  local kind, ok = u[1], 0
  if kind == 'r' then  -- {'r', id, fence, delay, state, polls, failures, kind, tag, alone}
    local id = u[2]
    local r = held(id, u[3])
    if r then
      r[5], r[3], r[4] = u[5], u[6], u[7]
      if r[6] == '' then r[6] = u[8] end
      if r[7] == '' and u[9] ~= '' then
        r[7] = u[9]
        tag_add(id, r[7])
      end
      r[2] = -1
      if r[9] == 1 then
        redis.call('ZADD', DUE, now, id)  -- news came while it was being polled
      else
        r[9] = u[10]
        redis.call('ZADD', DUE, now + u[4], id)
      end
      rec_put(id, r)
      ok = 1
    end
  elseif kind == 's' then  -- {'s', id, fence or -1, body}
    local id, fence, body = u[2], u[3], u[4]
    local r
    if fence == -1 then
      r = rec_get(id)
      if not r then
        if redis.call('HEXISTS', OUT, id) == 0 then
          record_outcome(id, '', body)
          ok = 1
        end
      end
    else
      r = held(id, fence)
    end
    if r then
      redis.call('HDEL', JOBS, id)
      redis.call('ZREM', DUE, id)
      tag_remove(id, r[7])
      record_outcome(id, r[10], body)
      if r[10] ~= '' then sub_settled(r[10]) end
      ok = 1
    end
  else  -- {'t', tag, fence, listed}
    local tag_key = P .. 'tg:' .. u[2]
    local fence = redis.call('HGET', tag_key, 'f')
    if fence and tonumber(fence) == u[3] and redis.call('EXISTS', P .. 'tm:' .. u[2]) == 1 then
      redis.call('HSET', tag_key, 'l', u[4], 'lu', '-1')
      ok = 1
    end
  end
  out[#out + 1] = ok
end
return out
"""
)

UNWATCH = (
    _PRELUDE
    + r"""
for i = 2, #ARGV do
  local id = ARGV[i]
  local r = rec_get(id)
  if r and r[11] == 0 then
    r[11] = 1
    redis.call('ZREM', DUE, id)
    tag_remove(id, r[7])
    rec_put(id, r)
  end
end
return 0
"""
)

NOTIFY = (
    _PRELUDE
    + r"""
local out = {}
for i = 2, #ARGV, 2 do
  local id, news = ARGV[i], ARGV[i + 1]
  local r = rec_get(id)
  if not r then
    if redis.call('HEXISTS', OUT, id) == 0 then news_put(id, news) end
    out[#out + 1] = 0
  elseif cjson.decode(news).settles then  -- the caller settles it next: nobody polls it
    out[#out + 1] = 1
  else
    r[9] = 1
    if r[11] == 0 and r[2] <= now then redis.call('ZADD', DUE, now, id) end
    rec_put(id, r)
    out[#out + 1] = 1
  end
end
return out
"""
)

PAUSE = (
    _PRELUDE
    + r"""
local until_ = now + tonumber(ARGV[2])
local current = tonumber(redis.call('GET', PAUSE) or '-1')
if until_ > current then redis.call('SET', PAUSE, tostring(until_)) end
return 0
"""
)


BEGIN_SUBMISSION = (
    _PRELUDE
    + _SUBMISSIONS
    + r"""
local key, custom_id, request, lease = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local s = sub_get(key)
if not s then return sub_lease(key, {custom_id, request, '', 0, 0, 0}, lease, 'send') end
if s[3] ~= '' then return {'created', 0, s[3], s[6], key, s[1], s[2]} end
if s[5] > now then return {'busy', 0, '', s[6], key, s[1], s[2]} end
return sub_lease(key, s, lease, 'reconcile')
"""
)

CLAIM_SUBMISSIONS = (
    _PRELUDE
    + _SUBMISSIONS
    + r"""
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', ORPH, '-inf', now, 'LIMIT', 0, limit)) do
  local s = sub_get(key)
  if s and s[3] == '' then
    out[#out + 1] = sub_lease(key, s, lease, 'reconcile')
  else
    redis.call('ZREM', ORPH, key)
  end
end
return out
"""
)

FINISH_SUBMISSION = (
    _PRELUDE
    + _SUBMISSIONS
    + r"""
local key, fence, watch = ARGV[2], tonumber(ARGV[3]), cjson.decode(ARGV[4])
local s = sub_held(key, fence)
if not s then return 0 end
local attributed = P .. 'attr:' .. s[1]
if redis.call('SISMEMBER', attributed, watch[1]) == 1 then return 0 end
redis.call('SADD', attributed, watch[1])
s[3], s[2] = watch[1], ''
sub_put(key, s)
redis.call('ZREM', ORPH, key)
watch[6] = key
watch_one(watch)
if redis.call('HEXISTS', JOBS, watch[1]) == 0 then sub_settled(key) end  -- it had settled
return 1
"""
)

END_SUBMISSION = (
    _PRELUDE
    + _SUBMISSIONS
    + r"""
-- ARGV: now, key, fence, 'release' with retry_in, or 'drop'
local key, fence, how = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local s = sub_held(key, fence)
if not s then return 0 end
if how == 'drop' then
  sub_forget(key)
else
  s[5] = now + tonumber(ARGV[5])
  redis.call('ZADD', ORPH, s[5], key)
  sub_put(key, s)
end
return 1
"""
)

READ_GROUP = (
    _PRELUDE
    + r"""
-- ARGV: now, group, consumer, count, claim_idle. Delivery times are kept on the store's
-- clock (a sorted set per group), so redelivery follows the same clock as leases.
local group, consumer, count, idle = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local delivered = P .. 'gd:' .. group
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', RES, group, '0', 'MKSTREAM')
local out = {}
local overdue = redis.call('ZRANGEBYSCORE', delivered, '-inf', now - idle, 'LIMIT', 0, count)
if #overdue > 0 then
  local args = {'XCLAIM', RES, group, consumer, 0}
  for _, id in ipairs(overdue) do args[#args + 1] = id end
  local claimed = redis.call(unpack(args))
  local kept = {}
  for _, entry in ipairs(claimed) do
    if entry and entry[2] then
      kept[entry[1]] = true
      out[#out + 1] = entry
      redis.call('ZADD', delivered, now, entry[1])
    end
  end
  for _, id in ipairs(overdue) do
    if not kept[id] then  -- trimmed from the stream meanwhile
      redis.call('ZREM', delivered, id)
      redis.call('XACK', RES, group, id)
    end
  end
end
if #out < count then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #out,
    'STREAMS', RES, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do
      out[#out + 1] = entry
      redis.call('ZADD', delivered, now, entry[1])
    end
  end
end
local first = redis.call('ZRANGE', delivered, 0, 0, 'WITHSCORES')
local redeliver = ''
if #first > 0 then redeliver = tostring(math.max(0, tonumber(first[2]) + idle - now)) end
local last = redis.call('XREVRANGE', RES, '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {redeliver, last_id, out}
"""
)

ACK = (
    _PRELUDE
    + r"""
local group = ARGV[2]
for i = 3, #ARGV do
  redis.call('XACK', RES, group, ARGV[i])
  redis.call('ZREM', P .. 'gd:' .. group, ARGV[i])
end
return 0
"""
)


_ONCE = r"""
if redis.call('EXISTS', KEYS[1] .. 'conf') == 0 then  -- the store was emptied: the caller
  return redis.error_reply('MEDIAXNOCONF the store options are gone')  -- sets them, retries
end
local ONCE = KEYS[2]
if ONCE then
  local answered = redis.call('GET', ONCE)
  if answered then return cjson.decode(answered) end
end
local function run()
SCRIPT
end
local answer = run()
if ONCE then
  local conf = cjson.decode(redis.call('GET', KEYS[1] .. 'conf') or '{}')
  redis.call('SET', ONCE, cjson.encode(answer), 'EX', math.ceil(conf.replay or 120))
end
return answer
"""


def _once(script: str) -> str:
    return _ONCE.replace("SCRIPT", script, 1)


ACK, APPLY, BEGIN_SUBMISSION, CLAIM = map(_once, (ACK, APPLY, BEGIN_SUBMISSION, CLAIM))
CLAIM_SUBMISSIONS, END_SUBMISSION = map(_once, (CLAIM_SUBMISSIONS, END_SUBMISSION))
FINISH_SUBMISSION, NOTIFY, PAUSE = map(_once, (FINISH_SUBMISSION, NOTIFY, PAUSE))
READ_GROUP, UNWATCH, WATCH = map(_once, (READ_GROUP, UNWATCH, WATCH))
