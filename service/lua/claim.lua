--[[
Lease up to N unclaimed comments of a queue to one moderator, in queue order, atomically: two
moderators claiming at once never get the same comment. A lease is a string key with a native
expiry, so an abandoned claim frees itself.

KEYS[1]  queue index zset           civ:{site}:queue:<queue>:<order>[:reason:<r>][:article:<a>|:author:<u>]
KEYS[2]  the moderator's claims     civ:{site}:claims:<moderator> (expires with its longest lease)
KEYS[3]  audit stream               civ:{site}:audit (one "claim" entry per comment leased)
KEYS[4]  optional: a second index of the same queue, order and reason (the author's, KEYS[1]
         being the article's); only comments in both are claimed, walking the smaller one

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  moderator id
ARGV[3]  how many (N)                      ARGV[4]  lease length (ms)
ARGV[5]  now (ms)                          ARGV[6]  "1" to walk the index highest score first
ARGV[7]  the batch id derived from the request's Idempotency-Key ("" without one)
ARGV[8]  how long (ms) the batch is remembered under that id (the idempotency window)

Derived keys: civ:{site}:lease:<id> and civ:{site}:comment:<id> of each comment walked, the
moderators hash (civ:{site}:moderators), which must still list the moderator, and, with a batch
id, the batch remembered under it (civ:{site}:claimed:<batch id>, a JSON list of the ids leased).

A retried call (same batch id, after a 503 that hid this claim: Redis ran it after the client's
timeout) leases nothing more: it finds the batch it made and answers the comments of it the
moderator still holds, as they stand, with their leases; those decided, released or whose lease
ran out since are left out, and no other comment is leased in their place.

Returns a list of {id, fields, lease ms left} with each claimed comment's hash as a flat
field/value list; false when the site was deleted (civ:{site}:site, since the caller read its
record); "revoked" when the moderator was revoked since its token was checked (nothing leased).
]]

local prefix, moderator = ARGV[1], ARGV[2]
local wanted, lease_ms, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local descending = ARGV[6] == "1"
local batch = 100
-- As the listing walks an article and an author together (page.lua): the smaller index, each id
-- kept only when the other holds it too.
local walked, other = KEYS[1], KEYS[4]
if other and redis.call("ZCARD", other) < redis.call("ZCARD", walked) then
  walked, other = other, walked
end

-- A process may keep a deleted site's record a second: what it wrote now could land behind the
-- purge, for a new site of that id to inherit.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return false
end
if revoked(prefix, moderator) then
  return "revoked"
end

local made = ARGV[7] ~= "" and prefix .. "claimed:" .. ARGV[7]
local kept = made and redis.call("GET", made)
if kept then
  local held = {}
  for _, id in ipairs(cjson.decode(kept)) do
    local lease = prefix .. "lease:" .. id
    if redis.call("GET", lease) == moderator then
      held[#held + 1] = {id, comment_fields(prefix, id), redis.call("PTTL", lease)}
    end
  end
  return held
end

redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now)
local claimed = {}
local ids_leased = {}
local offset = 0
while #claimed < wanted do
  local ids
  if descending then
    ids = redis.call("ZREVRANGE", walked, offset, offset + batch - 1)
  else
    ids = redis.call("ZRANGE", walked, offset, offset + batch - 1)
  end
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local in_both = not other or redis.call("ZSCORE", other, id)
    if in_both and redis.call("SET", prefix .. "lease:" .. id, moderator, "NX", "PX", lease_ms) then
      redis.call("ZADD", KEYS[2], now + lease_ms, id)
      record_lease(KEYS[3], id, "claim", moderator, now, now + lease_ms)
      claimed[#claimed + 1] = {id, comment_fields(prefix, id), lease_ms}
      ids_leased[#ids_leased + 1] = id
      if #claimed == wanted then
        break
      end
    end
  end
  offset = offset + batch
end
keep_claims(KEYS[2], now)
if made then
  -- Remembered even when empty: the retry then leases nothing either, as this call did not.
  redis.call("SET", made, cjson.encode(ids_leased), "PX", ARGV[8])
end
return claimed
