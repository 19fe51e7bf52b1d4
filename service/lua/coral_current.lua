--[[
Whether a decision is still the comment's latest, before the worker carries it into Coral (one
made in civility, or one of Coral's moderators carried back after a call of civility's that may
have undone it there): a decision (approve, reject, spam) recorded after it, whoever made it,
replaced it. A later one made in civility follows it into Coral; one of Coral's moderators
(applied after a reopen, or once civility's was dead-lettered) is Coral's already: either way
this one, sent now, would undo the later one there. A reopen replaces nothing: Coral cannot
take it, and keeps the last decision made before it. When the decision is still the latest, the
status its call sets in Coral is noted in the link in the same step (``calling_status``, see
``CoralLink``), with the call in flight until it ends (``in_flight``, coral_answered.lua), so a
decision recorded after that step finds the call noted, and one before it is seen here.

KEYS[1]  site hash                  civ:{site}:site
KEYS[2]  link hash                  civ:{site}:coral:link:<id>
KEYS[3]  history list               civ:{site}:history:<id>

ARGV[1]  the comment's version the decision made
ARGV[2]  the status its call sets in Coral, noted when it is still the latest ("" to note none)
ARGV[3]  when the decision was made (ms): noted with ARGV[2] as the call in flight
ARGV[4]  the actor Coral's moderators decide as ("coral")

A link gone meanwhile (its comment past the retention) is not written again.

Returns 1 when it is still the latest; 0 when a later decision replaced it (the link then notes
no call: the one noted for this decision, whose call failed, is not made again; one still noted
in flight was cut short before its end was noted, see coral_answered.lua, and a decision of
Coral's moderators with the other status that replaced it is carried back into Coral as there);
-1 when the site was deleted, writing nothing.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local version = tonumber(ARGV[1])
local sets = {approve = "APPROVED", reject = "REJECTED", spam = "REJECTED"}
-- Newest first, back to the decision itself: a comment's changes after it are few.
local index = redis.call("LLEN", KEYS[3]) - 1
while index >= 0 do
  local entry = cjson.decode(redis.call("LINDEX", KEYS[3], index))
  if tonumber(entry.version) <= version then
    break
  end
  if sets[entry.action] then
    if redis.call("EXISTS", KEYS[2]) == 1 then
      local noted = redis.call("HMGET", KEYS[2], "in_flight", "calling_status")
      -- This decision's call, cut short (its worker stopped, or lost its lease), may still be
      -- applied by Coral after this later decision.
      if noted[1] == ARGV[3] and entry.actor == ARGV[4] and sets[entry.action] ~= noted[2] then
        redis.call("HSET", KEYS[2], "resend_version", entry.version)
      end
      redis.call("HSET", KEYS[2], "calling_status", "", "in_flight", "")
    end
    return 0
  end
  index = index - 1
end
if ARGV[2] ~= "" and redis.call("EXISTS", KEYS[2]) == 1 then
  redis.call("HSET", KEYS[2], "calling_status", ARGV[2], "in_flight", ARGV[3])
end
return 1
