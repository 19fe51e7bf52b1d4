--[[
Move the outbox's new events into delivery records, in outbox order, in one step.

Reading (XREADGROUP) and acknowledging (XACK) happen inside this script, so an entry is never
left read-but-unrecorded: a worker that dies after the call has lost nothing, and two workers
can never admit one comment's events out of order. The consumer group is only the cursor; its
pending list is always empty, and every entry at or below its last-delivered id is recorded.

KEYS[1]  outbox stream             civ:{site}:outbox
KEYS[2]  due deliveries zset       civ:{site}:deliveries:due
KEYS[3]  pending deliveries zset   civ:{site}:deliveries:pending
KEYS[4]  site hash                 civ:{site}:site

ARGV[1]  site key prefix "civ:{site}:"   ARGV[2]  consumer group name
ARGV[3]  consumer name                  ARGV[4]  most entries to admit
ARGV[5]  now (ms)

Derived keys (same prefix, same hash slot): the delivery record civ:{site}:delivery:<event id>,
the comment's line civ:{site}:deliveries:line:<comment id> (its undelivered event ids, oldest
first; only the head may be attempted) and the comment hash civ:{site}:comment:<comment id>
(for the article id).

A site with neither a callback URL nor Coral's GraphQL API (coral_graphql_url) has nobody to
deliver to: its events are acknowledged unrecorded, and so is an entry missing its event id,
comment id or type (it could never be delivered).

Returns {entries read, deliveries due now}: a worker leases only from a site with due work.
]]

local prefix, group, now = ARGV[1], ARGV[2], ARGV[5]
local function admitted(read)
  return {read, redis.call("ZCOUNT", KEYS[2], "-inf", now)}
end
if redis.call("EXISTS", KEYS[1]) == 0 then
  return admitted(0)
end
-- Created at the stream's start, so events written before any worker ran are delivered too.
redis.pcall("XGROUP", "CREATE", KEYS[1], group, "0")
local reply = redis.call("XREADGROUP", "GROUP", group, ARGV[3], "COUNT", ARGV[4],
  "STREAMS", KEYS[1], ">")
if not reply then
  return admitted(0)
end
local entries = reply[1][2]
local target = redis.call("HMGET", KEYS[4], "callback_url", "coral_graphql_url")
local callback = (target[1] and target[1] ~= "" and target[1]) or target[2]
for _, entry in ipairs(entries) do
  local stream_id, flat = entry[1], entry[2]
  local event = {}
  for index = 1, #flat, 2 do
    event[flat[index]] = flat[index + 1]
  end
  -- An entry without the fields that identify it cannot be delivered; it is acknowledged and
  -- skipped rather than left to stop every later event of the site.
  local deliverable = callback and callback ~= "" and event.event_id and event.comment_id
    and event.type
  local record = deliverable and prefix .. "delivery:" .. event.event_id
  if deliverable and redis.call("EXISTS", record) == 0 then
    local at = event.at or now
    local article = event.article_id
      or redis.call("HGET", prefix .. "comment:" .. event.comment_id, "article_id") or ""
    redis.call("HSET", record,
      "id", event.event_id, "stream_id", stream_id, "type", event.type,
      "comment_id", event.comment_id, "article_id", article, "comment_state", event.state or "",
      "reasons", event.reasons or "[]", "decided_by", event.decided_by or "",
      "version", event.version or 0, "created_at", at, "state", "pending", "attempts", 0,
      "updated_at", now, "next_attempt_at", "", "last_status", "", "last_error", "", "lease", "")
    redis.call("ZADD", KEYS[3], at, event.event_id)
    local line = prefix .. "deliveries:line:" .. event.comment_id
    if redis.call("RPUSH", line, event.event_id) == 1 then
      redis.call("HSET", record, "next_attempt_at", now)
      redis.call("ZADD", KEYS[2], now, event.event_id)
    end
  end
  redis.call("XACK", KEYS[1], group, stream_id)
end
return admitted(#entries)
