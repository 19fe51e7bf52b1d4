--[[
Link a comment to Coral (it came from Coral's phase, and Coral's ids once a webhook named them)
for as long as the comment is kept: without expiry while it waits for a moderator, for what is
left of its retention once decided. From then on each change of the comment keeps the link with
it (the scripts' `retain`), so a comment held past the retention still reaches Coral when decided.

KEYS[1]  link hash                  civ:{site}:coral:link:<id>
KEYS[2]  comment hash               civ:{site}:comment:<id>
KEYS[3]  (optional) Coral's id      civ:{site}:coral:comment:<coral id>: the comment id, for
         ARGV[1] ms (a webhook that finds it gone asks Coral's GraphQL API again)

ARGV[1]  the retention (ms): the link's expiry when its comment is gone meanwhile
ARGV[2]  comment id                 ARGV[3..] field, value, ... of the link

Returns 1.
]]

redis.call("HSET", KEYS[1], unpack(ARGV, 3))
local kept = redis.call("PTTL", KEYS[2])
if kept == -1 then
  redis.call("PERSIST", KEYS[1])
else
  redis.call("PEXPIRE", KEYS[1], kept > 0 and kept or ARGV[1])
end
if KEYS[3] then
  redis.call("SET", KEYS[3], ARGV[2], "PX", ARGV[1])
end
return 1
