--[[
A call of civility's into Coral has ended (answered, failed, or cut off by the timeout): it is no
longer in flight. A decision of Coral's moderators recorded while it was (its webhook came before
the call ended) is the comment's latest, but Coral may have applied the call after it, undoing it
there: unless a later decision made in civility follows it into Coral anyway, it is noted to be
carried back into Coral (``resend_version``, see ``CoralLink``), which its own event, behind this
one in the comment's line, then does. One whose webhook read the call in flight and that is
recorded after this step is noted by the step recording it (decide.lua).

KEYS[1]  site hash                  civ:{site}:site
KEYS[2]  link hash                  civ:{site}:coral:link:<id>
KEYS[3]  history list               civ:{site}:history:<id>

ARGV[1]  the comment's version the decision called for made
ARGV[2]  the status the call set in Coral
ARGV[3]  the actor Coral's moderators decide as ("coral")
ARGV[4]  "1" when Coral answered the call: a decision carried back by it is then no longer to be
         (one given up still is, should its event be redelivered)
ARGV[5..] field, value, ... to set in the link in the same step

A link gone meanwhile (its comment past the retention) is not written again.

Returns the version noted to be carried back, 0 for none; -1 when the site was deleted, writing
nothing.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
if redis.call("EXISTS", KEYS[2]) == 0 then
  return 0
end
local version = tonumber(ARGV[1])
local sets = {approve = "APPROVED", reject = "REJECTED", spam = "REJECTED"}
local later = 0
-- Newest first, back to the decision called for: the latest decision since decides. A reopen
-- sets nothing in Coral.
local index = redis.call("LLEN", KEYS[3]) - 1
while index >= 0 do
  local entry = cjson.decode(redis.call("LINDEX", KEYS[3], index))
  if tonumber(entry.version) <= version then
    break
  end
  if sets[entry.action] then
    if entry.actor == ARGV[3] and sets[entry.action] ~= ARGV[2] then
      later = tonumber(entry.version)
    end
    break
  end
  index = index - 1
end
redis.call("HSET", KEYS[2], "in_flight", "")
if #ARGV > 4 then
  redis.call("HSET", KEYS[2], unpack(ARGV, 5))
end
if later > 0 then
  redis.call("HSET", KEYS[2], "resend_version", later)
elseif ARGV[4] == "1" and redis.call("HGET", KEYS[2], "resend_version") == ARGV[1] then
  redis.call("HSET", KEYS[2], "resend_version", "")
end
return later
