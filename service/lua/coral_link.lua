--[[
Link a comment to Coral (it came from Coral's phase, and Coral's ids once a webhook named them)
for as long as the comment is kept: without expiry while it waits for a moderator, for what is
left of its retention once decided. From then on each change of the comment keeps the link with
it (the scripts' `retain`), so a comment held past the retention still reaches Coral when decided.

KEYS[1]  site hash                  civ:{site}:site
KEYS[2]  link hash                  civ:{site}:coral:link:<id>
KEYS[3]  comment hash               civ:{site}:comment:<id>
KEYS[4]  (optional) another name of the comment, kept for ARGV[3] ms: Coral's id
         civ:{site}:coral:comment:<coral id>, set to the comment's id (a webhook's link, for
         the retention: a webhook that finds it gone asks Coral's GraphQL API again), or the
         author's comments in a thread civ:{site}:coral:thread:<hash>, a sorted set of ids by
         when the phase first saw each (the phase's mark, for a day: an EDIT without ids looks
         for the comment it edits there)
KEYS[5]  (with Coral's id) due deliveries zset       civ:{site}:deliveries:due
KEYS[6]  (with Coral's id) the comment's line        civ:{site}:deliveries:line:<id>

ARGV[1]  the retention (ms): the link's expiry when its comment is gone meanwhile
ARGV[2]  comment id                 ARGV[3] KEYS[4]'s lifetime (ms)
ARGV[4]  what KEYS[4] is: "coral" (Coral's id) or "thread" ("" without KEYS[4])
ARGV[5]  now (ms)                   ARGV[6] site key prefix "civ:{site}:"
ARGV[7..] field, value, ... of the link

Derived key, with Coral's id: the record of the event at the head of the comment's line,
civ:{site}:delivery:<event id>. A decision waiting for Coral's ids (made before any webhook
named the comment, or while Coral had not stored the text it was made on) is due at once when
they change, rather than at its next retry, hours later; it is still the head of its line, so
the comment's events keep their order. One being attempted (leased) is left to its attempt,
whose retry, if it waited for them, is due at once, even after its last try
(delivery_settle.lua).

Returns 1; 0 when the site was deleted (since the caller read its record), writing nothing.
]]

-- A process may keep a deleted site's record a second: a link (or a latest comment) written now
-- could land behind the purge, for a new site of that id to inherit.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
local named, now = ARGV[4], ARGV[5]
local before = redis.call("HMGET", KEYS[2], "coral_id", "revision_id")
redis.call("HSET", KEYS[2], unpack(ARGV, 7))
local kept = redis.call("PTTL", KEYS[3])
if kept == -1 then
  redis.call("PERSIST", KEYS[2])
else
  redis.call("PEXPIRE", KEYS[2], kept > 0 and kept or ARGV[1])
end
if named == "coral" then
  redis.call("SET", KEYS[4], ARGV[2], "PX", ARGV[3])
  local after = redis.call("HMGET", KEYS[2], "coral_id", "revision_id")
  local head = redis.call("LINDEX", KEYS[6], 0)
  if head and (after[1] ~= before[1] or after[2] ~= before[2]) then
    local record = ARGV[6] .. "delivery:" .. head
    local stored = redis.call("HMGET", record, "state", "lease")
    local due = redis.call("ZSCORE", KEYS[5], head)
    if stored[1] == "pending" and stored[2] == "" and due and tonumber(due) > tonumber(now) then
      redis.call("HSET", record, "next_attempt_at", now)
      redis.call("ZADD", KEYS[5], "XX", now, head)
    end
  end
elseif named == "thread" then
  -- First seen is kept: an edit does not make a comment newer than the author's next one.
  redis.call("ZADD", KEYS[4], "NX", now, ARGV[2])
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", "(" .. (tonumber(now) - tonumber(ARGV[3])))
  redis.call("PEXPIRE", KEYS[4], ARGV[3])
end
return 1
