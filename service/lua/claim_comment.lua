--[[
Lease one chosen comment to a moderator (the one a moderator opens), as the queue claim leases
its comments: the same lease string, the same entry in the moderator's claims, the same audit
entry. Only a comment waiting in a queue (pending, or reported) can be claimed; a lease the
caller already holds is renewed for the new length.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  lease string               civ:{site}:lease:<id>
KEYS[3]  the moderator's claims     civ:{site}:claims:<moderator> (expires with its longest lease)
KEYS[4]  audit stream               civ:{site}:audit (one "claim" entry)
KEYS[5]  pending queue index        civ:{site}:queue:pending:oldest
KEYS[6]  reported queue index       civ:{site}:queue:reported:oldest

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  moderator id
ARGV[3]  comment id                        ARGV[4]  lease length (ms)
ARGV[5]  now (ms)

Derived key: the moderators hash (civ:{site}:moderators), which must still list the moderator.

Returns {"ok", fields} with the comment's hash as a flat field/value list; {"not_found"};
{"not_queued", state}; {"claim_conflict", holder, remaining lease ms}; {"revoked"} when the
moderator was revoked since its token was checked; or {"gone"} when the site was deleted
(civ:{site}:site, since the caller read its record).
]]

local prefix, moderator, id = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, now = tonumber(ARGV[4]), tonumber(ARGV[5])

-- A process may keep a deleted site's record a second: what it wrote now could land behind the
-- purge, for a new site of that id to inherit.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {"gone"}
end
if revoked(prefix, moderator) then
  return {"revoked"}
end

local state = redis.call("HGET", KEYS[1], "state")
if not state then
  return {"not_found"}
end
if not redis.call("ZSCORE", KEYS[5], id) and not redis.call("ZSCORE", KEYS[6], id) then
  return {"not_queued", state}
end
local holder = redis.call("GET", KEYS[2])
if holder and holder ~= moderator then
  return {"claim_conflict", holder, redis.call("PTTL", KEYS[2])}
end

redis.call("SET", KEYS[2], moderator, "PX", lease_ms)
redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", now)
redis.call("ZADD", KEYS[3], now + lease_ms, id)
keep_claims(KEYS[3], now)
record_lease(KEYS[4], id, "claim", moderator, now, now + lease_ms)
return {"ok", comment_fields(prefix, id)}
