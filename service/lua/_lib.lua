--[[
Helpers shared by the scripts; the store prepends this file to each of them.

Keys that depend on a comment's stored article, author or reasons (the per-article, per-author
and per-reason queue indexes, the author's counters) cannot be named by the caller before the script reads the
comment, so they are derived here from the site prefix ARGV[1] (for example "civ:{news}:"),
exactly as service/keys.py names them. Being under the same prefix they share its hash tag and
hash slot, so the scripts stay valid on Redis Cluster.
]]

local ORDERS = {"priority", "oldest"}
local HOURLY_TTL_SECONDS = 8 * 24 * 3600
local AUDIT_MAXLEN = 100000

-- `reasons` is the comment's reasons as stored (a JSON array): one index per reason, whole and
-- per article and per author, so the queue filters by reason as it does by article and author,
-- and by a reason within an article or an author.
local function queue_indexes(prefix, queue, order, article, author, reasons)
  local base = prefix .. "queue:" .. queue .. ":" .. order
  local keys = {base, base .. ":article:" .. article, base .. ":author:" .. author}
  for _, reason in ipairs(cjson.decode(reasons or "[]")) do
    local scoped = base .. ":reason:" .. reason
    keys[#keys + 1] = scoped
    keys[#keys + 1] = scoped .. ":article:" .. article
    keys[#keys + 1] = scoped .. ":author:" .. author
  end
  return keys
end

-- Put a comment into every index of a queue: by priority and by the time it entered the queue
-- (`queued_at`: a comment imported, edited, reopened or reported ages in the queue from then, not
-- from its creation), with the reasons it is queued for.
local function enqueue(prefix, queue, id, article, author, priority, queued_at, reasons)
  for _, order in ipairs(ORDERS) do
    local score = order == "priority" and priority or queued_at
    for _, key in ipairs(queue_indexes(prefix, queue, order, article, author, reasons)) do
      redis.call("ZADD", key, score, id)
    end
  end
end

-- Take a comment out of a queue: `reasons` must be those it was queued with (the stored ones
-- before a change replaces them).
local function dequeue(prefix, queue, id, article, author, reasons)
  for _, order in ipairs(ORDERS) do
    for _, key in ipairs(queue_indexes(prefix, queue, order, article, author, reasons)) do
      redis.call("ZREM", key, id)
    end
  end
end

-- The browse indexes (service/keys.py `comments`): each comment sits in its current state's index,
-- whole and per article and per author, scored by the time of its last decision.
local function state_indexes(prefix, state, article, author)
  local base = prefix .. "comments:" .. state
  return {base, base .. ":article:" .. article, base .. ":author:" .. author}
end

-- The reported queue's indexes of the same scopes, in the same order.
local function reported_indexes(prefix, article, author)
  local base = prefix .. "queue:reported:oldest"
  return {base, base .. ":article:" .. article, base .. ":author:" .. author}
end

--[[
A browse index of a decided state names comments that expire (retain below), so it is kept
bounded: filing a comment drops up to PRUNE_STEP entries decided before `cutoff` (now less the
retention) whose comment is gone, the latest first so the ones expiring now always go, and the
index expires with the retention after its last change. A comment in the reported queue stays
"approved" and is kept until decided whatever its decision time, so an entry is dropped only once
its hash is gone, and an approved index whose scope's reported queue index (`held`) names a
comment does not expire. Pending comments never expire: their indexes neither.
]]
local PRUNE_STEP = 16

-- Looks at `most` entries at most: a script's work stays bounded however many expired.
local function prune_index(prefix, key, cutoff, most)
  local old = redis.call("ZREVRANGEBYSCORE", key, "(" .. cutoff, "-inf", "LIMIT", 0, most)
  for _, id in ipairs(old) do
    if redis.call("EXISTS", prefix .. "comment:" .. id) == 0 then
      redis.call("ZREM", key, id)
    end
  end
end

-- GT never shortens an expiry (comments filed under a longer retention than the site's now keep
-- theirs) and leaves an index without one to the check below: new, or kept for a reported comment.
local function keep_index(key, held, keep_ms)
  if redis.call("PEXPIRE", key, keep_ms, "GT") == 1 or redis.call("PTTL", key) ~= -1 then
    return
  end
  if held and redis.call("EXISTS", held) == 1 then
    return
  end
  redis.call("PEXPIRE", key, keep_ms)
end

-- Move a comment's browse entries from state `from` (false for a new comment) to `to`, keeping
-- the decided indexes it enters bounded for the site's retention `keep_ms`.
local function file_state(prefix, id, article, author, from, to, now, keep_ms)
  local held = false
  if from == "approved" or to == "approved" then
    held = reported_indexes(prefix, article, author)
  end
  if from then
    for number, key in ipairs(state_indexes(prefix, from, article, author)) do
      redis.call("ZREM", key, id)
      -- Its scope's last reported comment may just have left: the index expires again.
      if from == "approved" then
        keep_index(key, held[number], keep_ms)
      end
    end
  end
  for number, key in ipairs(state_indexes(prefix, to, article, author)) do
    redis.call("ZADD", key, now, id)
    if to ~= "pending" then
      prune_index(prefix, key, tonumber(now) - keep_ms, PRUNE_STEP)
      keep_index(key, to == "approved" and held[number], keep_ms)
    end
  end
end

local function listed(csv, value)
  for item in string.gmatch(csv, "[^,]+") do
    if item == value then
      return true
    end
  end
  return false
end

-- Move one comment from state `from` (false for a new comment) to `to` in the author's counters;
-- `posted` when the author wrote it now (first_seen and last_seen are about writing, not about
-- what moderators did).
local function count_author(author_key, from, to, now, posted)
  if from then
    redis.call("HINCRBY", author_key, from, -1)
  end
  redis.call("HINCRBY", author_key, to, 1)
  if posted then
    redis.call("HSETNX", author_key, "first_seen", now)
    redis.call("HSET", author_key, "last_seen", now)
  end
end

-- Count a decision site-wide (`kind` is "auto" or "moderator") and in its UTC hour's bucket.
local function count_decision(stats_key, hourly_key, kind, state)
  redis.call("HINCRBY", stats_key, kind, 1)
  redis.call("HINCRBY", stats_key, kind .. ":" .. state, 1)
  redis.call("HINCRBY", hourly_key, kind, 1)
  redis.call("EXPIRE", hourly_key, HOURLY_TTL_SECONDS)
end

--[[
Record one change everywhere it must appear: the comment's history (every change, forever), the
site's audit stream (which the console's event stream follows) and the outbox stream the webhook
worker delivers from. `change` holds strings; reasons, note and model arrive already JSON-encoded
so empty lists stay lists; an edit's history entry keeps the time the host dated it (`edited_at`,
when it gave one) and the text it replaced (`previous_text`).
]]
local function record(history_key, audit_key, outbox_key, change)
  local entry = '{"version":' .. change.version
    .. ',"at":' .. change.now
    .. ',"actor":' .. cjson.encode(change.actor)
    .. ',"action":' .. cjson.encode(change.action)
    .. ',"from_state":' .. (change.from and cjson.encode(change.from) or "null")
    .. ',"to_state":' .. cjson.encode(change.to)
    .. ',"reasons":' .. change.reasons
    .. ',"note":' .. change.note
    .. ',"model":' .. change.model
    .. (change.edited_at and (',"edited_at":' .. change.edited_at) or "")
    -- Last: an erasure cuts it off the entry (erase_author.lua).
    .. (change.previous_text and (',"previous_text":' .. cjson.encode(change.previous_text)) or "")
    .. "}"
  -- A creation stays in the comment hash until the first change (keep_creation).
  if change.action ~= "create" then
    redis.call("RPUSH", history_key, entry)
  end
  redis.call("XADD", audit_key, "MAXLEN", "~", AUDIT_MAXLEN, "*",
    "comment_id", change.id, "action", change.action, "actor", change.actor,
    "from_state", change.from or "", "to_state", change.to, "version", change.version,
    "reasons", change.reasons, "note", change.note, "at", change.now)
  redis.call("XADD", outbox_key, "*",
    "event_id", change.event_id, "type", change.event_type, "site", change.site,
    "comment_id", change.id, "state", change.to, "previous_state", change.from or "",
    "version", change.version, "reasons", change.reasons, "decided_by", change.actor,
    "at", change.now)
end

--[[
A comment's creation is not written to its history list while it is the comment's only change:
until another change, the comment hash holds all the entry would (version, decided_at,
decided_by, state, reasons, model, the edit time it was first delivered with), and the store
builds the entry from it for a comment whose list is empty. Most comments never change, so this
keeps a list of ~340 bytes out of Redis for each. Every script that changes a comment's version
calls keep_creation first, while the hash still says how it was created (as intake does before it
moves the edit time of a text delivered again); comments stored before this keep the entry in
their list.
]]
local function keep_creation(comment_key, history_key)
  if redis.call("EXISTS", history_key) == 1 then
    return
  end
  local created = redis.call("HMGET", comment_key, "version", "decided_at", "decided_by", "state",
    "reasons", "model", "edited_at")
  if not created[1] then
    return
  end
  redis.call("RPUSH", history_key, '{"version":' .. created[1]
    .. ',"at":' .. created[2]
    .. ',"actor":' .. cjson.encode(created[3])
    .. ',"action":"create","from_state":null'
    .. ',"to_state":' .. cjson.encode(created[4])
    .. ',"reasons":' .. created[5]
    .. ',"note":null'
    .. ',"model":' .. (created[6] and cjson.encode(created[6]) or "null")
    .. (created[7] and (',"edited_at":' .. created[7]) or "")
    .. "}")
end

-- A moderator revoked after its request was authenticated is no longer listed: a lease taken for
-- it now would outlive the release of its claims, and hold the comment from everyone else. The
-- admin (actor "admin") is no listed moderator.
local function revoked(prefix, actor)
  return actor ~= "admin" and redis.call("HEXISTS", prefix .. "moderators", actor) == 0
end

-- A claim or release in the audit stream: no state changes, but other moderators' consoles
-- follow the stream and must see who holds which comment.
local function record_lease(audit_key, id, action, actor, now, lease_until)
  redis.call("XADD", audit_key, "MAXLEN", "~", AUDIT_MAXLEN, "*",
    "comment_id", id, "action", action, "actor", actor, "lease_until", lease_until, "at", now)
end

-- A moderator's claims (a sorted set of comment ids by lease end) expire with the longest lease
-- they hold: an entry whose lease ran out is dropped at their next claim, and one who never
-- claims, releases or is revoked again leaves nothing behind. Called once the claims changed.
local function keep_claims(claims_key, now)
  local longest = redis.call("ZRANGE", claims_key, -1, -1, "WITHSCORES")[2]
  if longest then
    redis.call("PEXPIRE", claims_key, math.max(1, tonumber(longest) - tonumber(now)))
  end
end

--[[
A comment's text lives in its own string (civ:{site}:text:<id>) so the comment hash keeps only
short values and Redis stores it as a compact listpack; a comment written before that keeps its
text in the hash. These read either layout; `comment_fields` answers as the hash once did, plus
the title and url of the comment's article (civ:{site}:article:<article>) as `article_title` and
`article_url` when the article has them, so every view of a comment can name its article, and
`queued_at` for a comment waiting in the pending or the reported queue.
]]
local function text_key(prefix, id)
  return prefix .. "text:" .. id
end

local function comment_text(prefix, id)
  return redis.call("GET", text_key(prefix, id)) or redis.call("HGET", prefix .. "comment:" .. id, "text")
end

local function comment_fields(prefix, id)
  local fields = redis.call("HGETALL", prefix .. "comment:" .. id)
  local text = redis.call("GET", text_key(prefix, id))
  if text and #fields > 0 then
    fields[#fields + 1] = "text"
    fields[#fields + 1] = text
  end
  for index = 1, #fields, 2 do
    if fields[index] == "article_id" then
      local title, url = unpack(redis.call("HMGET", prefix .. "article:" .. fields[index + 1],
        "title", "url"))
      if title then
        fields[#fields + 1] = "article_title"
        fields[#fields + 1] = title
      end
      if url then
        fields[#fields + 1] = "article_url"
        fields[#fields + 1] = url
      end
      break
    end
  end
  -- When a comment waiting in a queue entered it (its score in that queue's oldest index), ms.
  if #fields > 0 then
    local queued_at = redis.call("ZSCORE", prefix .. "queue:pending:oldest", id)
      or redis.call("ZSCORE", prefix .. "queue:reported:oldest", id)
    if queued_at then
      fields[#fields + 1] = "queued_at"
      fields[#fields + 1] = queued_at
    end
  end
  return fields
end

--[[
Retention: a decided comment, its text, its history, its reports and its link to Coral
(coral_link.lua) expire `keep_ms` after its last change; a comment waiting for a moderator
(pending, or in the reported queue) is kept until decided, so `keep_ms` 0 removes any expiry.
]]
local function retain(prefix, id, keep_ms)
  for _, kind in ipairs({"comment:", "text:", "history:", "reports:", "coral:link:"}) do
    local key = prefix .. kind .. id
    if keep_ms > 0 then
      redis.call("PEXPIRE", key, keep_ms)
    else
      redis.call("PERSIST", key)
    end
  end
end

--[[
An author's recent decisions (Coral Talk's "recent comment history"): one sorted set per author,
members "a:<id>" for an approved comment and "r:<id>" for a rejected or spam one, scored by the
decision time. A comment counts once, as its latest decision; a comment back in pending counts
not at all. Bounded by time (the site's window, also the key's expiry) and by RECENT_MAX entries.
]]
local RECENT_MAX = 200

local function remember_decision(prefix, author, id, state, now, window_ms)
  local key = prefix .. "recent:" .. author
  redis.call("ZREM", key, "a:" .. id, "r:" .. id)
  local mark = nil
  if state == "approved" then
    mark = "a:"
  elseif state == "rejected" or state == "spam" then
    mark = "r:"
  end
  if mark then
    redis.call("ZADD", key, now, mark .. id)
  end
  redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. (tonumber(now) - window_ms))
  redis.call("ZREMRANGEBYRANK", key, 0, -(RECENT_MAX + 1))
  -- The member just added is the newest, so neither trim removes it and the key exists.
  if mark or redis.call("EXISTS", key) == 1 then
    redis.call("PEXPIRE", key, window_ms)
  end
end

-- Decided and rejected (or spam) comments of the author within the window ending now.
local function recent_counts(prefix, author, now, window_ms)
  local members = redis.call("ZRANGEBYSCORE", prefix .. "recent:" .. author,
    tonumber(now) - window_ms, "+inf")
  local rejected = 0
  for _, member in ipairs(members) do
    if string.sub(member, 1, 2) == "r:" then
      rejected = rejected + 1
    end
  end
  return #members, rejected
end

-- The standing an author's next comment meets: the moderator-set status, or "premod" for an
-- active author whose recent rejection rate reached the site's threshold (0 turns that off).
local function standing(prefix, author, status, now, window_ms, rate, min_decisions)
  local current = status or "active"
  if current == "active" and rate > 0 then
    local decided, rejected = recent_counts(prefix, author, now, window_ms)
    if decided >= min_decisions and rejected / decided >= rate then
      return "premod"
    end
  end
  return current
end

-- A rotation's grace list (webhook secrets, api keys): the previous values stored under
-- `list_field` as JSON [[value, valid until ms], ...] oldest first (a site rotated before the list
-- existed has its one previous value in `value_field` and `until_field`), less those expired at
-- `now`, plus `current` valid until `until_ms`; beyond `most` kept the oldest go first. Returns
-- the new list and the values it ended before their deadline.
local function grace_list(site_key, list_field, value_field, until_field, current, now, until_ms,
  most)
  local stored = redis.call("HMGET", site_key, list_field, value_field, until_field)
  local kept
  if stored[1] and stored[1] ~= "" then
    kept = cjson.decode(stored[1])
  elseif stored[2] and stored[2] ~= "" then
    kept = {{stored[2], tonumber(stored[3] or "0")}}
  else
    kept = {}
  end
  local fresh = {}
  for _, entry in ipairs(kept) do
    if tonumber(entry[2]) > now then
      fresh[#fresh + 1] = entry
    end
  end
  fresh[#fresh + 1] = {current, until_ms}
  local ended = {}
  while #fresh > most do
    ended[#ended + 1] = table.remove(fresh, 1)[1]
  end
  return fresh, ended
end
