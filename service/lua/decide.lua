--[[
A moderator's decision on one comment: approve, reject or spam, or reopen (back to pending, into
the queue again). Deciding an already decided comment is allowed (that is the undo) and is
recorded like any other change.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  history list               civ:{site}:history:<id>
KEYS[3]  audit stream               civ:{site}:audit
KEYS[4]  outbox stream              civ:{site}:outbox
KEYS[5]  lease string               civ:{site}:lease:<id>
KEYS[6]  site stats hash            civ:{site}:stats
KEYS[7]  this hour's stats hash     civ:{site}:stats:hour:<YYYYMMDDHH>
KEYS[8]  the actor's claims zset    civ:{site}:claims:<actor>
KEYS[9]  (a ban's rejection only) the ban's rejections list   civ:{site}:ban:rejected:<author>

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  site id
ARGV[3]  comment id                        ARGV[4]  target state
ARGV[5]  action (approve, reject, spam, reopen)    ARGV[6]  actor (moderator id)
ARGV[7]  expected version ("" to skip the check)
ARGV[8]  reasons JSON                      ARGV[9]  note JSON (null for none)
ARGV[10] now (ms)                          ARGV[11] outbox event id
ARGV[12] outbox event type                 ARGV[13] allowed source states (comma separated)
ARGV[14] retention (ms) of the decided comment and its history
ARGV[15] the author's recent window (ms)
ARGV[16] how long (ms) the event id is remembered as made, when it came from an Idempotency-Key
         (0: a fresh id, nothing remembered)
ARGV[17] (Coral's moderators' decision only) the call of civility's into Coral its webhook found
         in flight: the link's ``in_flight`` as read then ("" for none)
ARGV[18] the status that call sets in Coral

Derived keys: the pending and reported queue indexes of the comment's article, author and reasons, the
browse indexes of its old and new state (civ:{site}:comments:<state>[:article:<a>|:author:<u>]),
the
author's counters (civ:{site}:author:<author>) and recent decisions (civ:{site}:recent:<author>),
the comment's reports (civ:{site}:reports:<id>), which approving clears (the moderator kept
the comment, so readers' reports start again from none), when ARGV[16] is set, the decision
remembered under its event id (civ:{site}:decided:<event id>, the comment id, for ARGV[16] ms),
and, when ARGV[17] is set, the comment's Coral link (civ:{site}:coral:link:<id>).

A decision of Coral's moderators whose webhook found civility's call into Coral in flight
(ARGV[17]), recorded once that call has ended, with another status than the call's: the end of
the call (coral_answered.lua) came before it and found nothing to carry back, yet Coral may have
applied the call after this decision. It is noted in the same step to be carried back into Coral
(the link's ``resend_version``, see ``CoralLink``), as coral_answered.lua notes one recorded
before the call ended: whichever of the two steps comes second notes it.

A retried call (same event id, for example after a client timeout) finds its own change already
made and returns the comment as it stands instead of applying it twice: by the comment's last
event id, or, once the comment changed again (another moderator's decision, the host's edit), by
the decision remembered under the event id. So does a call without a version that asks for the
decision the comment already carries from the same actor with the same reasons.

Returns {"ok", fields}; {"not_found"}; {"version_conflict", current version, current state};
{"claim_conflict", holder, remaining lease ms}; {"invalid_transition", state}; or {"gone"} when
the site was deleted (civ:{site}:site, read like ingest's: its purge may not have reached the
comment yet).
]]

local prefix, site, id, target, actor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local now = ARGV[10]
local remember_ms = tonumber(ARGV[16])
local decided = prefix .. "decided:" .. ARGV[11]

-- A process may keep a deleted site's record a second: what it decided now could land behind
-- the purge, for a new site of that id to inherit.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {"gone"}
end

local stored = redis.call("HMGET", KEYS[1], "state", "version", "article_id", "author_id", "model",
  "last_event_id", "priority", "decided_by", "reasons")
local previous = stored[1]
if not previous then
  return {"not_found"}
end
-- This request's change, already made: the comment may have moved on since (the last event id
-- is then another's), and applying it again would undo that and send an event of a reused id.
if stored[6] == ARGV[11] or (remember_ms > 0 and redis.call("EXISTS", decided) == 1) then
  return {"ok", comment_fields(prefix, id)}
end
-- The decision the comment already carries (same state, same moderator, same reasons), sent
-- again without a version: a retry whose first answer was lost. It changes nothing, so no
-- second event and no second history entry; a moderator who means to decide again sends the
-- version. Only a change the table allows from where the comment stands can be such a retry:
-- a reopen of a comment already back in the queue is refused as any reopen of a held one is.
if ARGV[7] == "" and previous == target and stored[8] == actor and stored[9] == ARGV[8]
    and listed(ARGV[13], previous) then
  -- Remembered as made all the same: a retry of this request whose answer was lost would
  -- otherwise find another moderator's later decision and overturn it.
  if remember_ms > 0 then
    redis.call("SET", decided, id, "PX", remember_ms)
  end
  return {"ok", comment_fields(prefix, id)}
end
if ARGV[7] ~= "" and ARGV[7] ~= stored[2] then
  return {"version_conflict", stored[2], previous}
end
local holder = redis.call("GET", KEYS[5])
if holder and holder ~= actor then
  return {"claim_conflict", holder, redis.call("PTTL", KEYS[5])}
end
if not listed(ARGV[13], previous) then
  return {"invalid_transition", previous}
end

local article, author = stored[3], stored[4]
keep_creation(KEYS[1], KEYS[2])
local version = redis.call("HINCRBY", KEYS[1], "version", 1)
redis.call("HSET", KEYS[1], "state", target, "reasons", ARGV[8], "decided_by", actor,
  "decided_at", now, "updated_at", now, "last_event_id", ARGV[11])
dequeue(prefix, "pending", id, article, author, stored[9])
dequeue(prefix, "reported", id, article, author, stored[9])
if target == "pending" then
  -- Reopened: it waits in the queue from now.
  enqueue(prefix, "pending", id, article, author, stored[7] or 0, now, ARGV[8])
end
file_state(prefix, id, article, author, previous, target, now, tonumber(ARGV[14]))
if target == "approved" then
  redis.call("DEL", prefix .. "reports:" .. id)
  redis.call("HDEL", KEYS[1], "reports")
end
redis.call("DEL", KEYS[5])
redis.call("ZREM", KEYS[8], id)

count_author(prefix .. "author:" .. author, previous, target, now, false)
remember_decision(prefix, author, id, target, now, tonumber(ARGV[15]))
if target ~= "pending" then
  -- A reopened comment is not decided: it counts when a moderator decides it again.
  count_decision(KEYS[6], KEYS[7], "moderator", target)
end
record(KEYS[2], KEYS[3], KEYS[4], {
  id = id, site = site, version = version, now = now, actor = actor, action = ARGV[5],
  from = previous, to = target, reasons = ARGV[8], note = ARGV[9],
  model = stored[5] and cjson.encode(stored[5]) or "null",
  event_id = ARGV[11], event_type = ARGV[12],
})
if remember_ms > 0 then
  redis.call("SET", decided, id, "PX", remember_ms)
end
if KEYS[9] then
  -- In the same step as the rejection: a retry of the ban after a lost answer finds it listed.
  redis.call("RPUSH", KEYS[9], id)
end
if ARGV[17] ~= "" then
  local link = prefix .. "coral:link:" .. id
  local coral_status = {approved = "APPROVED", rejected = "REJECTED", spam = "REJECTED"}
  -- Still in flight, its end notes this decision; a link gone with its comment is not written.
  if redis.call("HGET", link, "in_flight") ~= ARGV[17] and redis.call("EXISTS", link) == 1
      and coral_status[target] ~= ARGV[18] then
    redis.call("HSET", link, "resend_version", version)
  end
end
-- A comment back in the queue is kept until decided, like any held comment.
retain(prefix, id, target == "pending" and 0 or tonumber(ARGV[14]))
return {"ok", comment_fields(prefix, id)}
