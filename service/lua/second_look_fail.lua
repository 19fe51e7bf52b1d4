--[[
Count a failure of the semantic stage on one comment's text alone (scored by itself while other
texts of its batch were scored): after ARGV[3] such failures the comment leaves the queue, still
published on the lexical verdict, with look_state "failed", so one text the stage cannot read
never holds a worker's batches back for good.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  second-look queue zset     civ:{site}:secondlook:queue
KEYS[3]  second-look stats hash     civ:{site}:secondlook:stats
KEYS[4]  site record                civ:{site}:site

ARGV[1]  comment id                        ARGV[2]  the version the look was queued at
ARGV[3]  failures before the comment is given up

Returns {"failed"} (given up), {"again", failures so far}, {"stale"} (edited since: the new
text is queued afresh) or {"gone"} (the comment, or its site, deleted since it was taken).
]]

-- What a failure counted behind the site's purge would be left for a new site of that id.
if redis.call("EXISTS", KEYS[4]) == 0 then
  return {"gone"}
end

local id = ARGV[1]
local stored = redis.call("HMGET", KEYS[1], "state", "look_version")
if not stored[1] then
  redis.call("ZREM", KEYS[2], id)
  return {"gone"}
end
if stored[2] ~= ARGV[2] then
  return {"stale"}
end
local failures = redis.call("HINCRBY", KEYS[1], "look_failures", 1)
if failures < tonumber(ARGV[3]) then
  return {"again", failures}
end
redis.call("ZREM", KEYS[2], id)
redis.call("HSET", KEYS[1], "look_state", "failed")
redis.call("HINCRBY", KEYS[3], "failed", 1)
return {"failed"}
