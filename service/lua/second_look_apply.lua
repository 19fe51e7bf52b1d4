--[[
Record a second look at one comment: the semantic stage's blended scores, and, when they cross
the site's hold or reject threshold, the move of the published comment to pending (the host
takes it down until a moderator decides). Only a comment still published on the model's word
and not edited since it was queued is moved: one a moderator decided is never touched, and a
look at a text an edit replaced is dropped (the edit queued the new text).

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  history list               civ:{site}:history:<id>
KEYS[3]  audit stream               civ:{site}:audit
KEYS[4]  outbox stream              civ:{site}:outbox
KEYS[5]  second-look queue zset     civ:{site}:secondlook:queue
KEYS[6]  second-look stats hash     civ:{site}:secondlook:stats

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  site id
ARGV[3]  comment id                        ARGV[4]  the version the look was queued at
ARGV[5]  now (ms)                          ARGV[6]  blended scores JSON
ARGV[7]  model version of the blend        ARGV[8]  "1" to hold the comment, "0" to keep it
ARGV[9]  reasons JSON (of the hold)        ARGV[10] outbox event id
ARGV[11] outbox event type                 ARGV[12] allowed source states (comma separated)
ARGV[13] priority in the pending queue     ARGV[14] the author's recent window (ms)
ARGV[15] delay from intake to this look (ms)
ARGV[16] the delay's histogram field in the stats hash ("le:<seconds>")
ARGV[17] retention (ms) of a decided comment (the browse index it leaves keeps to it)

Derived keys: the pending and reported queue indexes of the comment's article, author and reasons, the
browse indexes of its old and new state, the author's counters (civ:{site}:author:<author>) and
recent decisions (civ:{site}:recent:<author>).

Returns {"held", version}; {"looked"}; {"skipped", state} (a moderator decided it, or it is not
published); {"stale"} (edited since: a newer look is queued); or {"gone"} (the comment, or its
site: civ:{site}:site, deleted since the worker read its policy and not yet purged).
]]

local prefix, site, id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[5]

-- What a look wrote behind the purge would be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {"gone"}
end

local stored = redis.call("HMGET", KEYS[1], "state", "decided_by", "look_version", "article_id",
  "author_id", "reasons")
local state = stored[1]
if not state then
  redis.call("ZREM", KEYS[5], id)
  return {"gone"}
end
if stored[3] ~= ARGV[4] then
  return {"stale"}
end
local by_model = stored[2] and string.sub(stored[2], 1, 5) == "auto:"
redis.call("ZREM", KEYS[5], id)
if not by_model or not listed(ARGV[12], state) then
  redis.call("HSET", KEYS[1], "look_state", "skipped")
  redis.call("HINCRBY", KEYS[6], "skipped", 1)
  return {"skipped", state}
end

redis.call("HINCRBY", KEYS[6], "looked", 1)
redis.call("HINCRBY", KEYS[6], "delay_ms", ARGV[15])
redis.call("HINCRBY", KEYS[6], ARGV[16], 1)
redis.call("HSET", KEYS[1], "look_scores", ARGV[6], "look_at", now, "look_model", ARGV[7])
if ARGV[8] ~= "1" then
  redis.call("HSET", KEYS[1], "look_state", "done")
  return {"looked"}
end

local article, author = stored[4], stored[5]
local actor = "auto:" .. ARGV[7]
keep_creation(KEYS[1], KEYS[2])
local version = redis.call("HINCRBY", KEYS[1], "version", 1)
redis.call("HSET", KEYS[1], "state", "pending", "reasons", ARGV[9], "decided_by", actor,
  "decided_at", now, "updated_at", now, "last_event_id", ARGV[10], "priority", ARGV[13],
  "look_state", "held")
-- Taken down: the reported queue holds published comments only.
dequeue(prefix, "reported", id, article, author, stored[6])
enqueue(prefix, "pending", id, article, author, ARGV[13], now, ARGV[9])
file_state(prefix, id, article, author, state, "pending", now, tonumber(ARGV[17]))
count_author(prefix .. "author:" .. author, state, "pending", now, false)
remember_decision(prefix, author, id, "pending", now, tonumber(ARGV[14]))
redis.call("HINCRBY", KEYS[6], "held", 1)
record(KEYS[2], KEYS[3], KEYS[4], {
  id = id, site = site, version = version, now = now, actor = actor, action = "second_look",
  from = state, to = "pending", reasons = ARGV[9], note = "null", model = cjson.encode(ARGV[7]),
  event_id = ARGV[10], event_type = ARGV[11],
})
-- Held comments are kept until a moderator decides them.
retain(prefix, id, 0)
return {"held", version}
