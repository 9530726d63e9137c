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

/**
 * Reading a stored sibling set's dots off its JSON text, without decoding it (cjson.decode is most of a
 * small script's cost: about 5 µs for one version with a clock of three). Inside a JSON string every
 * quote is escaped, so '"d":[' occurs in the text only as a field name: at each version's dot, or as a
 * clock entry of a writer named "d", whose array starts with a number, not a quote. Each helper answers
 * only what the text tells for certain, and nil or false otherwise, so the caller decodes.
 */
const DOTS = `
-- Every dot in the text is covered by clk (writer -> counter); false when one is not, or the text cannot tell.
local function dotscovered(text, clk)
  local at = 1
  while true do
    local s, e = string.find(text, '"d":[', at, true)
    if not s then return true end
    local w, n = string.match(text, '^"([^"]+)",(%d+)%]', e + 1)
    if not w then return false end
    local c = clk[w]
    if c == nil or c < tonumber(n) then return false end
    at = e + 1
  end
end
-- The text's versions as far as the tree and the listing indexes need them (dot, a value or not,
-- expiry), when the text holds exactly one version; nil otherwise. As with '"d":[', '"v":"' is the
-- value field and '"x":' followed by a digit the expiry: a writer named v or x is followed by '['.
local function lone(text)
  local s, e = string.find(text, '"d":[', 1, true)
  if not s or string.find(text, '"d":[', e + 1, true) then return nil end
  local w, n = string.match(text, '^"([^"]+)",(%d+)%]', e + 1)
  if not w then return nil end
  local one = { d = { w, tonumber(n) } }
  if string.find(text, '"v":"', 1, true) then one.v = '' end
  if string.find(text, '"x":', 1, true) then
    local x = string.match(text, '"x":(%d+)[,}]')
    if not x then return nil end
    one.x = tonumber(x)
  end
  return { one }
end
`;

/**
 * The anti-entropy tree (see src/merkle/key-hash.ts for the hash). A key's hash is
 * stored in its segment's index hash; the segment's leaf, 16 bytes at offset
 * 16 * segment of one string, is the XOR of the hashes in the index. Byte arithmetic
 * uses Redis's LuaBitOp.
 *
 * Writes do not keep the tree themselves, as Riak's AAE does not: in the same atomic
 * step as the data they add `segment|field` to the dirty set (t:dirty), and
 * FOLD_DIRTY_LUA folds dirty keys into the indexes and leaves in batches before the
 * tree is read. Upkeep in every write was 60% of a replica write's script time; folded,
 * a key written many times between exchanges is hashed once.
 */
const TREE = `${DOTS}
-- Hashes are handled as four 32-bit words (LuaBitOp wraps 0..2^32-1 to int32 and back):
-- a quarter of the string work of byte by byte, which made a write's script cost double.
local function hexwords(h)
  return tonumber(string.sub(h, 1, 8), 16), tonumber(string.sub(h, 9, 16), 16), tonumber(string.sub(h, 17, 24), 16), tonumber(string.sub(h, 25, 32), 16)
end
-- XOR the hash h (hex, nil for none) into the words x1..x4.
local function xorwords(x1, x2, x3, x4, h)
  if not h then return x1, x2, x3, x4 end
  local w1, w2, w3, w4 = hexwords(h)
  return bit.bxor(x1, w1), bit.bxor(x2, w2), bit.bxor(x3, w3), bit.bxor(x4, w4)
end
local function keyhash(field, sibs)
  -- One sibling (nearly every key): its hash is the key's, as the XOR below would give it.
  if #sibs == 1 then return string.sub(redis.sha1hex(field .. '\\n' .. sibs[1].d[1] .. ':' .. string.format('%d', sibs[1].d[2])), 1, 32) end
  local a, b, c, d = 0, 0, 0, 0
  for _, s in ipairs(sibs) do
    a, b, c, d = xorwords(a, b, c, d, redis.sha1hex(field .. '\\n' .. s.d[1] .. ':' .. string.format('%d', s.d[2])))
  end
  return bit.tohex(a, 8) .. bit.tohex(b, 8) .. bit.tohex(c, 8) .. bit.tohex(d, 8)
end
local function bytesword(s, i)
  local b1, b2, b3, b4 = string.byte(s, i, i + 3)
  return (b1 or 0) * 16777216 + (b2 or 0) * 65536 + (b3 or 0) * 256 + (b4 or 0)
end
local function wordbytes(w)
  return bit.band(bit.rshift(w, 24), 255), bit.band(bit.rshift(w, 16), 255), bit.band(bit.rshift(w, 8), 255), bit.band(w, 255)
end
-- A leaf's 16 bytes from its four words.
local function leafbytes(x1, x2, x3, x4)
  local b1, b2, b3, b4 = wordbytes(x1)
  local b5, b6, b7, b8 = wordbytes(x2)
  local b9, b10, b11, b12 = wordbytes(x3)
  local b13, b14, b15, b16 = wordbytes(x4)
  return string.char(b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16)
end
-- Leaf changes gathered per segment (acc[seg] = four words to XOR in), then written with one
-- GETRANGE and SETRANGE per segment: a fold of many keys touches each leaf once.
local function xorleaves(leaves, acc)
  for seg, w in pairs(acc) do
    local off = seg * 16
    local cur = redis.call('GETRANGE', leaves, off, off + 15)
    local x1, x2, x3, x4 = bit.bxor(bytesword(cur, 1), w[1]), bit.bxor(bytesword(cur, 5), w[2]), bit.bxor(bytesword(cur, 9), w[3]), bit.bxor(bytesword(cur, 13), w[4])
    redis.call('SETRANGE', leaves, off, leafbytes(x1, x2, x3, x4))
  end
end
-- The listing index (k:index, every field holding a value, all scores 0, in byte order): in it while
-- any sibling holds a value, out of it once only tombstones are left. x:index scores a key whose
-- every value expires by when the last of them does (a key with a value that never expires is not
-- in it): listings skip a key past its score, and the reaper turns its expired values into tombstones.
-- z:index scores a key holding only tombstones by when it last changed (this server's clock, ms):
-- the tombstone reaper's candidates (see actors/node/tombstones.ts).
local function nowms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- What a key's versions make of it in the listing indexes: 'v' a value that never expires,
-- 'x' values that all expire (by the time returned), 't' tombstones only; nil when it holds nothing.
local function liststate(sibs)
  if sibs == nil or #sibs == 0 then return nil, nil end
  local live, expiry = false, 0
  for _, s in ipairs(sibs) do
    if s.v ~= nil then
      live = true
      if expiry ~= nil then
        if s.x == nil then expiry = nil elseif s.x > expiry then expiry = s.x end
      end
    end
  end
  if not live then return 't', nil end
  if expiry == nil then return 'v', nil end
  return 'x', expiry
end
local function indexkey(field, sibs, now)
  local state, expiry = liststate(sibs)
  if state == 'v' or state == 'x' then redis.call('ZADD', 'k:index', 0, field) else redis.call('ZREM', 'k:index', field) end
  if state == 'x' then redis.call('ZADD', 'x:index', expiry, field) else redis.call('ZREM', 'x:index', field) end
  if state == 't' then redis.call('ZADD', 'z:index', now, field) else redis.call('ZREM', 'z:index', field) end
end
-- What indexkey does, from the state the key was in (its index entry's last letter): only what
-- changed is written, so a key rewritten with a value that never expires costs no index command.
local function reindex(field, was, state, expiry, now)
  local live, waslive = state == 'v' or state == 'x', was == 'v' or was == 'x'
  if live and not waslive then redis.call('ZADD', 'k:index', 0, field) elseif waslive and not live then redis.call('ZREM', 'k:index', field) end
  if state == 'x' then redis.call('ZADD', 'x:index', expiry, field) elseif was == 'x' then redis.call('ZREM', 'x:index', field) end
  if state == 't' then redis.call('ZADD', 'z:index', now, field) elseif was == 't' then redis.call('ZREM', 'z:index', field) end
end
-- Record what the key holds now (sibs nil or empty: nothing) in its segment's index, and its
-- leaf's change in acc. An index entry is the key's hash (32 hex digits) and its liststate
-- letter; the leaves XOR the hashes only. With now, the listing indexes follow the change.
local function track(acc, index, seg, field, sibs, now)
  local old = redis.call('HGET', index, field)
  if not old then old = nil end
  local state, expiry = liststate(sibs)
  local new = nil
  if state ~= nil then new = keyhash(field, sibs) .. state end
  if now ~= nil then
    local was = nil
    if old ~= nil then was = string.sub(old, 33, 33) end
    reindex(field, was, state, expiry, now)
  end
  if old == new then return end
  local w = acc[seg]
  if w == nil then w = { 0, 0, 0, 0 } acc[seg] = w end
  w[1], w[2], w[3], w[4] = xorwords(w[1], w[2], w[3], w[4], old)
  w[1], w[2], w[3], w[4] = xorwords(w[1], w[2], w[3], w[4], new)
  -- t:segs counts the index hashes, so the store can count its data keys exactly.
  if new then
    redis.call('HSET', index, field, new)
    if not old and redis.call('HLEN', index) == 1 then redis.call('INCR', 't:segs') end
  else
    redis.call('HDEL', index, field)
    if redis.call('EXISTS', index) == 0 then redis.call('DECR', 't:segs') end
  end
end
`;

/**
 * Merge versions written elsewhere into one or more keys, each atomically, marking each
 * changed key dirty for the tree. A replica takes a coordinator's batch in one script
 * run, not one per key (each run costs Redis more than a small merge). KEYS: the dirty
 * set, then the data keys; ARGV: for each key its JSON array of versions, tree field,
 * segment, and the shortcut: '' or, when the array holds one version whose clock does
 * not cover its own dot, '*' and that clock as "writer counter " pairs. Returns, per key,
 * 1 when anything was stored, 0 when all were known or obsolete.
 *
 * The shortcut: when that clock covers every dot stored, the merge's result is the one
 * version, so the array is stored as it came, with nothing decoded or encoded. (A stored
 * version's clock could cover the new dot only if its writer had issued a counter twice.)
 */
export const APPLY_MANY_LUA = `${HELPERS}${DOTS}
local out = {}
for i = 2, #KEYS do
  local a = (i - 2) * 4
  local cur = redis.call('GET', KEYS[i])
  local short = false
  if ARGV[a + 4] ~= '' then
    local clk = {}
    for w, n in string.gmatch(ARGV[a + 4], '([^ *]+) (%d+)') do clk[w] = tonumber(n) end
    short = not cur or dotscovered(cur, clk)
  end
  local changed = short
  if short then
    redis.call('SET', KEYS[i], ARGV[a + 1])
  else
    local sibs = {}
    if cur then sibs = cjson.decode(cur) end
    local merged
    merged, changed = mergeAll(sibs, cjson.decode(ARGV[a + 1]))
    if changed then redis.call('SET', KEYS[i], cjson.encode(merged)) end
  end
  if changed then
    redis.call('SADD', KEYS[1], ARGV[a + 3] .. '|' .. ARGV[a + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`;

/**
 * Fold up to ARGV[1] dirty keys into the tree. KEYS: tree leaves, the dirty set. A
 * member is `segment|field`; its data key is v:<field> and its index t:s:<segment>
 * (this store runs on one Redis, not Redis Cluster, so those need not be declared).
 * Returns how many keys it folded: fewer than asked means the set is empty.
 */
export const FOLD_DIRTY_LUA = `${TREE}
local members = redis.call('SPOP', KEYS[2], tonumber(ARGV[1]))
local n = #members
local segs, fields, names = {}, {}, {}
for i = 1, n do
  local m = members[i]
  local bar = string.find(m, '|', 1, true)
  segs[i] = string.sub(m, 1, bar - 1)
  fields[i] = string.sub(m, bar + 1)
  names[i] = 'v:' .. fields[i]
end
-- The keys' data in MGETs of up to 256 (a GET each was a fifth of a fold's command time).
local curs = {}
for from = 1, n, 256 do
  local got = redis.call('MGET', unpack(names, from, math.min(n, from + 255)))
  for j = 1, #got do curs[from + j - 1] = got[j] end
end
local acc = {}
local now = nowms()
for i = 1, n do
  local cur = curs[i]
  local sibs = nil
  if cur then sibs = lone(cur) or cjson.decode(cur) end
  -- The index's name from the member's own digits, not from a number formatted back.
  track(acc, 't:s:' .. segs[i], tonumber(segs[i]), fields[i], sibs, now)
end
xorleaves(KEYS[1], acc)
return n
`;

/**
 * KEYS: data key, the node's dot counter, the store's epoch, the dirty set. ARGV:
 * node, ts, context JSON, value JSON text, '1' for a tombstone, the condition ('1'
 * if-match: CONFLICT when a stored version is not covered by the context; '2'
 * if-none-match: CONFLICT when a value is stored), tree field, segment, '1' to supersede every stored version (last write wins, the
 * timestamp raised above theirs), the sibling bound (0: none; SIBLINGS error beyond), the
 * value's expiry in ms ('' for none; an expired value counts as absent for if-none-match).
 *
 * The writer is `node.epoch`; a store without an epoch (new, or wiped) takes a fresh
 * one from the server clock, so it never reissues a dot from before a loss. The new
 * dot exceeds every counter of this writer seen on the key or in the context and
 * every dot it issued before, so two writes never share a dot. Returns the key's
 * whole sibling set after the write as JSON, the new version last.
 */
const EPOCH = `
local function epochOf(key)
  local epoch = redis.call('GET', key)
  if epoch then return epoch end
  local t = redis.call('TIME')
  local n = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local digits = '0123456789abcdefghijklmnopqrstuvwxyz'
  epoch = ''
  while n > 0 do
    local r = n % 36
    epoch = string.sub(digits, r + 1, r + 1) .. epoch
    n = (n - r) / 36
  end
  redis.call('SET', key, epoch)
  return epoch
end
`;

/**
 * The reaper: turn expired values into tombstones of the same dots (the dots, and so the
 * tree, stay as they were; the tombstone still supersedes what the version did). KEYS:
 * the dirty set; ARGV: now, then pairs of (tree field, segment). Returns the values dropped.
 */
export const REAP_LUA = `
local now = tonumber(ARGV[1])
local dropped = 0
for i = 2, #ARGV, 2 do
  local field = ARGV[i]
  local cur = redis.call('GET', 'v:' .. field)
  if cur then
    local sibs = cjson.decode(cur)
    local changed = false
    for _, s in ipairs(sibs) do
      if s.v ~= nil and s.x ~= nil and s.x <= now then
        s.v = nil
        changed = true
        dropped = dropped + 1
      end
    end
    if changed then
      redis.call('SET', 'v:' .. field, cjson.encode(sibs))
      redis.call('SADD', KEYS[1], ARGV[i + 1] .. '|' .. field)
    end
  end
  redis.call('ZREM', 'x:index', field)
end
return dropped
`;

/** Delete a key if it still holds exactly ARGV[1], marking it dirty. KEYS: data key, the dirty set; ARGV: text, tree field, segment. */
export const DELETE_IF_UNCHANGED_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[3] .. '|' .. ARGV[2])
return 1
`;

/** Replace a key's text if it still holds exactly ARGV[1]. KEYS: data key; ARGV: text, new text. */
export const REPLACE_IF_UNCHANGED_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/**
 * The change log: append each (bucket, key, event) of ARGV[2..] to the stream KEYS[1],
 * keeping about ARGV[1] entries. One script run for a turn's events, not an XADD each.
 * Returns the new entries' ids, in order.
 */
export const APPEND_CHANGES_LUA = `
local ids = {}
for i = 2, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'b', ARGV[i], 'k', ARGV[i + 1], 'e', ARGV[i + 2])
end
return ids
`;

/** KEYS[1] the store's epoch. Returns it, taking one if the store has none. */
export const EPOCH_LUA = `${EPOCH}
return epochOf(KEYS[1])
`;

export const COORDINATE_LUA = `${HELPERS}${EPOCH}
-- Fold a version's whole history (its context and its dot) into a clock.
local function absorb(clock, s)
  for n, e in pairs(s.c) do
    local mine = clock[n]
    if mine == nil or mine[1] < e[1] then clock[n] = e end
  end
  local mine = clock[s.d[1]]
  if mine == nil or mine[1] < s.d[2] then clock[s.d[1]] = { s.d[2], s.t } end
end
local node = ARGV[1] .. '.' .. epochOf(KEYS[3])
local ts = tonumber(ARGV[2])
local ctx = cjson.decode(ARGV[3])
local cur = redis.call('GET', KEYS[1])
local sibs = {}
if cur then sibs = cjson.decode(cur) end
if ARGV[6] == '1' then
  for _, s in ipairs(sibs) do
    if not covers(ctx, s.d) then return redis.error_reply('CONFLICT a version was written since the context was read') end
  end
elseif ARGV[6] == '2' then
  for _, s in ipairs(sibs) do
    if s.v ~= nil and (s.x == nil or s.x > ts) then return redis.error_reply('CONFLICT the key exists') end
    absorb(ctx, s)
  end
end
if ARGV[9] == '1' then
  for _, s in ipairs(sibs) do
    absorb(ctx, s)
    if s.t >= ts then ts = s.t + 1 end
  end
end
-- Keep the clock within MAX_CLOCK_ENTRIES (10), the most recently advanced entries, as vclock.ts prune does.
local names = {}
for n, _ in pairs(ctx) do names[#names + 1] = n end
if #names > 10 then
  table.sort(names, function(a, b)
    if ctx[a][2] ~= ctx[b][2] then return ctx[a][2] > ctx[b][2] end
    return a < b
  end)
  for i = 11, #names do ctx[names[i]] = nil end
end
local max = tonumber(ARGV[10])
if max > 0 then
  local kept = 1
  for _, s in ipairs(sibs) do
    if not covers(ctx, s.d) then kept = kept + 1 end
  end
  if kept > max then return redis.error_reply('SIBLINGS the key would hold ' .. kept .. ' siblings') end
end
local issued = redis.call('INCR', KEYS[2])
local counter = issued
local e = ctx[node]
if e ~= nil and e[1] >= counter then counter = e[1] + 1 end
for _, s in ipairs(sibs) do
  local c = s.c[node]
  if c ~= nil and c[1] >= counter then counter = c[1] + 1 end
  if s.d[1] == node and s.d[2] >= counter then counter = s.d[2] + 1 end
end
-- The counter moves past a higher dot seen on the key; INCR has already stored it otherwise.
if counter ~= issued then redis.call('SET', KEYS[2], counter) end
local v = { d = { node, counter }, c = ctx, t = ts }
if ARGV[5] ~= '1' then
  v.v = ARGV[4]
  if ARGV[11] ~= '' then v.x = tonumber(ARGV[11]) end
end
local out = merge(sibs, v)
local text = cjson.encode(out)
redis.call('SET', KEYS[1], text)
redis.call('SADD', KEYS[4], ARGV[8] .. '|' .. ARGV[7])
return text
`;

/**
 * Rebuild support: record what each key holds now. KEYS: tree leaves, then pairs of
 * (data key, its segment's tree index); ARGV: pairs of (tree field, segment).
 * Idempotent, so it may run while writes go on.
 */
export const REFRESH_TREE_LUA = `${TREE}
local acc = {}
local now = nowms()
for i = 1, #ARGV / 2 do
  local cur = redis.call('GET', KEYS[2 * i])
  local sibs = nil
  if cur then sibs = cjson.decode(cur) end
  indexkey(ARGV[2 * i - 1], sibs, now)
  track(acc, KEYS[2 * i + 1], tonumber(ARGV[2 * i]), ARGV[2 * i - 1], sibs)
end
xorleaves(KEYS[1], acc)
return 1
`;

/**
 * Rebuild support: set each leaf to the XOR of its index. KEYS: tree leaves, then
 * segment indexes; ARGV: segments. Returns how many of the indexes exist.
 */
export const RECOMPUTE_LEAVES_LUA = `${TREE}
local present = 0
for i = 1, #ARGV do
  local x1, x2, x3, x4 = 0, 0, 0, 0
  local hashes = redis.call('HVALS', KEYS[i + 1])
  if #hashes > 0 then present = present + 1 end
  for _, h in ipairs(hashes) do x1, x2, x3, x4 = xorwords(x1, x2, x3, x4, h) end
  redis.call('SETRANGE', KEYS[1], tonumber(ARGV[i]) * 16, leafbytes(x1, x2, x3, x4))
end
return present
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

/** KEYS[1] the lease; ARGV: owner, ttl ms. Takes or renews it: 1, or 0 when another owner holds it. */
export const LEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
`;

/** KEYS[1] the lease; ARGV[1] owner. Deletes it if that owner holds it. */
export const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;
