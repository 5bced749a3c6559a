package redisstore

// Times inside the scripts are microseconds of Redis's clock (TIME): small
// enough (about 2^51 today) for Lua's doubles to hold exactly.

// allowHead starts both allow scripts: Redis's clock, one read of every
// bucket and ban-until key, and the bans. The scripts decide one request.
// They do only what must happen next to the data; remaining budgets and
// the tightest rule are worked out by the caller from the reply.
//
// KEYS[1..n]    bucket keys (TAT values), one per rule
// KEYS[n+1..]   ban-until keys (end of the ban in force), one per TierIP rule
// ARGV[1]       the limits, packed (see below)
// ARGV[1+j]     0-based rule index of ban key j (KEYS[n+j])
//
// ARGV[1] holds, for each bucket, its Period and emission interval
// (Period/Count), both in µs, as little-endian IEEE doubles: 16 bytes a
// bucket, so n = #ARGV[1] / 16.
//
// A TAT is stored as its 8-byte little-endian double (struct.pack): unlike
// a decimal it costs neither Lua's number parsing on the read nor Redis's
// '%.17g' formatting on the write, about 3 µs of the one slot's CPU per
// 5-tier decision. A decimal TAT (written by versions before this format)
// is still read.
//
// Reply: {status, rule, retry µs, d1 .. dn} with status 1 admitted, 0
// refused by a limit (rule is the first refusing bucket, 0-based), 2
// refused by a ban (rule is the ban's rule index, retry its remainder), and
// di = TAT - now of bucket i after the decision, in whole µs rounded up.
const allowHead = `
local tonumber, ceil, sunpack, spack = tonumber, math.ceil, struct.unpack, struct.pack
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local lim = ARGV[1]
local n = #lim / 16
-- one read for every bucket and every ban-until key
local vals = redis.call('MGET', unpack(KEYS))

for j = n + 1, #KEYS do
  local u = tonumber(vals[j])
  if u and u > now then
    return {2, tonumber(ARGV[1 + j - n]), u - now}
  end
end
`

// allowSrc is the general script: a bucket key may be listed more than
// once (one recipient named twice), and each listing needs its own event.
const allowSrc = allowHead + `
local tat, first = {}, {}
local refused, retry = -1, 0
local pos = 1
for i = 1, n do
  local k = KEYS[i]
  local period, step
  period, step, pos = sunpack('<dd', lim, pos)
  local cur = tat[k]
  if not cur then
    local v = vals[i]
    cur = now
    if v then
      if #v == 8 then cur = sunpack('<d', v) else cur = tonumber(v) or now end
      if cur < now then cur = now end
    end
    first[i] = cur
  end
  -- GCRA: admitted when the new TAT is at most one period ahead of now
  local wait = cur + step - period - now
  if wait > 0.001 then
    if refused < 0 then refused = i - 1 end
    if wait > retry then retry = wait end
  end
  tat[k] = cur + step
end

local reply = {1, -1, 0}
if refused >= 0 then
  -- a refusal changes nothing: report every bucket as stored
  reply[1], reply[2], reply[3] = 0, refused, ceil(retry - 0.001)
  local seen = {}
  for i = 1, n do
    local k = KEYS[i]
    if first[i] then seen[k] = first[i] end
    reply[3 + i] = ceil(seen[k] - now - 0.001)
  end
  return reply
end
for k, v in pairs(tat) do
  local ttl = ceil((v - now) / 1000)
  if ttl < 1 then ttl = 1 end -- a sub-µs step may not move a 2^50 µs clock
  -- PSETEX is SET ... PX without the option parsing
  redis.call('PSETEX', k, ttl, spack('<d', v))
end
for i = 1, n do
  reply[3 + i] = ceil(tat[KEYS[i]] - now - 0.001)
end
return reply
`

// allowUniqueSrc is allowSrc for decisions whose bucket keys are all
// distinct, nearly all of them: with no key listed twice it needs no
// per-key tables, which saves about a microsecond of Redis CPU (the one
// slot's, which every decision of a prefix shares). Same reply.
const allowUniqueSrc = allowHead + `
local tat = {}
local refused, retry = -1, 0
local reply = {1, -1, 0}
local pos = 1
for i = 1, n do
  local period, step
  period, step, pos = sunpack('<dd', lim, pos)
  local v = vals[i]
  local cur = now
  if v then
    if #v == 8 then cur = sunpack('<d', v) else cur = tonumber(v) or now end
    if cur < now then cur = now end
  end
  -- GCRA: admitted when the new TAT is at most one period ahead of now
  local wait = cur + step - period - now
  if wait > 0.001 then
    if refused < 0 then refused = i - 1 end
    if wait > retry then retry = wait end
  end
  reply[3 + i] = cur
  tat[i] = cur + step
end

if refused >= 0 then
  -- a refusal changes nothing: report every bucket as stored
  reply[1], reply[2], reply[3] = 0, refused, ceil(retry - 0.001)
  for i = 1, n do
    reply[3 + i] = ceil(reply[3 + i] - now - 0.001)
  end
  return reply
end
for i = 1, n do
  local v = tat[i]
  local ttl = ceil((v - now) / 1000)
  if ttl < 1 then ttl = 1 end -- a sub-µs step may not move a 2^50 µs clock
  redis.call('PSETEX', KEYS[i], ttl, spack('<d', v))
  reply[3 + i] = ceil(v - now - 0.001)
end
return reply
`

// penalizeSrc records offences against ban keys, each key's n one after
// another at one instant, and returns for each key the ban in force after
// each of its offences (µs, 0 when none). It mirrors ratelimit's in-memory
// ban logic; n > 1 is what n calls at the same instant would do, in one
// round trip (concurrent Penalize calls for one key are coalesced, see
// penalize.go), and several keys in one run are what one run per key at
// that instant would do (PenalizeAsync's batches, see async.go).
//
// KEYS     pairs, one per key:
//
//	ban record, a hash: c offences in window, w window start,
//	l escalation level, u end of the current (or last) ban;
//	ban-until key: u as a plain value that exists only while the
//	ban is in force, so allowSrc reads it in the same MGET as the buckets
//
// ARGV     Threshold, Window µs, Base µs, Max µs, then each pair's n
const penalizeSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local thr, win, base, mx = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local res = {}
for j = 1, #KEYS / 2 do
  local rec, ukey = KEYS[2 * j - 1], KEYS[2 * j]
  local n = tonumber(ARGV[4 + j]) or 1
  local v = redis.call('HMGET', rec, 'c', 'w', 'l', 'u')
  local c, w, l, u = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0

  local out = {}
  for k = 1, n do
    if c > 0 and now - w >= win then c = 0 end
    if c == 0 then w = now end
    c = c + 1
    if l > 0 and now >= u + mx then l = 0 end
    if c >= thr then
      l = l + 1
      c = 0
      local d = base
      local i = 1
      while i < l and d < mx do
        d = d * 2
        i = i + 1
      end
      if d > mx then d = mx end
      if now + d > u then u = now + d end
    end
    if u > now then out[k] = u - now else out[k] = 0 end
  end

  local keep = u + mx
  if w + win > keep then keep = w + win end
  redis.call('HSET', rec, 'c', c, 'w', string.format('%.17g', w), 'l', l, 'u', string.format('%.17g', u))
  redis.call('PEXPIRE', rec, math.max(1, math.ceil((keep - now) / 1000)))
  if u > now then
    redis.call('SET', ukey, string.format('%.17g', u), 'PX', math.max(1, math.ceil((u - now) / 1000)))
  end
  res[j] = out
end
return res
`
