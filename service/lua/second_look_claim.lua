--[[
Take up to ARGV[3] due comments of one site's second-look queue for a worker: each is leased
(its due time pushed ARGV[4] ms ahead), so a worker that dies before it finishes leaves it to be
taken again once the lease ends. A comment that is gone (expired, erased) or that the model no
longer speaks for (a moderator decided it, or it is no longer published) leaves the queue here.

KEYS[1]  second-look queue zset     civ:{site}:secondlook:queue
KEYS[2]  second-look stats hash     civ:{site}:secondlook:stats

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  now (ms)
ARGV[3]  most comments to take             ARGV[4]  lease (ms)

Derived keys: each comment's hash (civ:{site}:comment:<id>) and its author's hash
(civ:{site}:author:<author>), read for the text, the version it was queued at and the author's
status.

Returns {backlog, {{id, queued version, text, queued at (ms), author status}, ...}}, the backlog
counting what was taken; {0, {}} for a site deleted since the worker listed it (civ:{site}:site).
]]

local prefix, now = ARGV[1], tonumber(ARGV[2])
local lease_until = now + tonumber(ARGV[4])
-- What the skips counted behind the site's purge would be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {0, {}}
end
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[3]))
local taken = {}
for _, id in ipairs(due) do
  local comment_key = prefix .. "comment:" .. id
  local fields = redis.call("HMGET", comment_key, "state", "decided_by", "look_version", "text",
    "look_queued_at", "author_id")
  local by_model = fields[2] and string.sub(fields[2], 1, 5) == "auto:"
  if fields[1] == "approved" and by_model and fields[3] then
    redis.call("ZADD", KEYS[1], lease_until, id)
    local status = redis.call("HGET", prefix .. "author:" .. fields[6], "status") or "active"
    -- The text is a string of its own, or a field of a comment stored before that (ingest).
    local text = redis.call("GET", prefix .. "text:" .. id) or fields[4]
    taken[#taken + 1] = {id, fields[3], text, fields[5], status}
  else
    redis.call("ZREM", KEYS[1], id)
    if fields[1] then
      redis.call("HSET", comment_key, "look_state", "skipped")
      redis.call("HINCRBY", KEYS[2], "skipped", 1)
    end
  end
end
return {redis.call("ZCARD", KEYS[1]), taken}
