/**
 * Lua for the replica merge, run atomically inside Redis. Mirrors
 * versioning/version.ts mergeVersion; test/integration/redis-storage.test.ts holds
 * the two to the same results.
 *
 * Lua's cjson keeps 14 significant digits of a number, which is exact for counters
 * and millisecond timestamps; values travel as JSON text inside a string, so cjson
 * never re-encodes a user's numbers.
 */
const HELPERS = `
local function covers(clock, dot)
  local e = clock[dot[1]]
  return e ~= nil and e[1] >= dot[2]
end
local function merge(sibs, inc)
  for _, s in ipairs(sibs) do
    if (s.d[1] == inc.d[1] and s.d[2] == inc.d[2]) or covers(s.c, inc.d) then return nil end
  end
  local out = {}
  for _, s in ipairs(sibs) do
    if not covers(inc.c, s.d) then out[#out + 1] = s end
  end
  out[#out + 1] = inc
  return out
end
local function mergeAll(sibs, incs)
  local changed = false
  for _, inc in ipairs(incs) do
    local out = merge(sibs, inc)
    if out ~= nil then
      sibs = out
      changed = true
    end
  end
  return sibs, changed
end
`;

/** KEYS[1] data key; ARGV[1] JSON array of versions. Returns 1 when anything was stored, 0 when all were known or obsolete. */
export const APPLY_LUA = `${HELPERS}
local cur = redis.call('GET', KEYS[1])
local sibs = {}
if cur then sibs = cjson.decode(cur) end
local merged, changed = mergeAll(sibs, cjson.decode(ARGV[1]))
if not changed then return 0 end
redis.call('SET', KEYS[1], cjson.encode(merged))
return 1
`;

/**
 * KEYS[1] data key, KEYS[2] the node's dot counter; ARGV: node, ts, context JSON,
 * value JSON text, '1' for a tombstone, '1' for a conditional write (fails with
CONFLICT when a stored version is not covered by the context). The new dot exceeds every counter of this node
 * seen on the key or in the context and every dot the node issued before, so two
 * writes never share a dot. Returns the key's whole sibling set after the write
 * as JSON, the new version last.
 */
export const COORDINATE_LUA = `${HELPERS}
local node = ARGV[1]
local ctx = cjson.decode(ARGV[3])
local cur = redis.call('GET', KEYS[1])
local sibs = {}
if cur then sibs = cjson.decode(cur) end
if ARGV[6] == '1' then
  for _, s in ipairs(sibs) do
    if not covers(ctx, s.d) then return redis.error_reply('CONFLICT a version was written since the context was read') end
  end
end
local counter = redis.call('INCR', KEYS[2])
local e = ctx[node]
if e ~= nil and e[1] >= counter then counter = e[1] + 1 end
for _, s in ipairs(sibs) do
  local c = s.c[node]
  if c ~= nil and c[1] >= counter then counter = c[1] + 1 end
  if s.d[1] == node and s.d[2] >= counter then counter = s.d[2] + 1 end
end
redis.call('SET', KEYS[2], counter)
local v = { d = { node, counter }, c = ctx, t = tonumber(ARGV[2]) }
if ARGV[5] ~= '1' then v.v = ARGV[4] end
local out = merge(sibs, v)
local text = cjson.encode(out)
redis.call('SET', KEYS[1], text)
return text
`;

/**
 * Hinted handoff. KEYS: the hint, the owner's hint index, the set of owners, the byte
 * and count totals; ARGV: versions JSON, index member, owner, max hints, max bytes.
 * Returns 1 stored, 0 already known, -1 refused (store full and the key new to it).
 */
export const STORE_HINT_LUA = `${HELPERS}
local cur = redis.call('GET', KEYS[1])
if not cur then
  if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[4]) or tonumber(redis.call('GET', KEYS[4]) or '0') >= tonumber(ARGV[5]) then
    return -1
  end
end
local sibs = {}
if cur then sibs = cjson.decode(cur) end
local merged, changed = mergeAll(sibs, cjson.decode(ARGV[1]))
if not changed then return 0 end
local text = cjson.encode(merged)
redis.call('SET', KEYS[1], text)
if cur then
  redis.call('INCRBY', KEYS[4], #text - #cur)
else
  redis.call('INCRBY', KEYS[4], #text)
  redis.call('INCR', KEYS[5])
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
end
return 1
`;

/** Delete a delivered hint if it is still what was delivered. Same KEYS; ARGV: delivered text, index member, owner. */
export const DELETE_HINT_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('DECRBY', KEYS[4], #cur)
redis.call('DECR', KEYS[5])
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[3]) end
return 1
`;
