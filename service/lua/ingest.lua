--[[
Create a comment with its automatic verdict, or apply a host edit (same id, new text), or
recognise a redelivery (same id, same text) and change nothing.

The verdict was decided in the caller for an assumed context (is the comment new, the author's
standing, the article's settings, which windows other comments hold). This script observes that
context itself and writes only if it is the one assumed; otherwise it writes nothing and returns
what it observed, and the caller decides again. So an intake usually costs one round trip, and a
verdict is never stored for a context it was not decided for.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  history list               civ:{site}:history:<id> (none for a new comment: keep_creation)
KEYS[3]  audit stream               civ:{site}:audit
KEYS[4]  outbox stream              civ:{site}:outbox
KEYS[5]  author hash                civ:{site}:author:<author>
KEYS[6]  article hash               civ:{site}:article:<article>
KEYS[7]  site stats hash            civ:{site}:stats
KEYS[8]  this hour's stats hash     civ:{site}:stats:hour:<YYYYMMDDHH>
KEYS[9]  lease string               civ:{site}:lease:<id>
KEYS[10..] window keys (flood per author, per address, duplicate text): observed, then set to the
           comment id with the expiry given for each in ARGV[33..]

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  site id
ARGV[3]  comment id                        ARGV[4]  sha256 of the text
ARGV[5]  article id                        ARGV[6]  parent id ("" for none)
ARGV[7]  author id                         ARGV[8]  author JSON
ARGV[9]  text                              ARGV[10] lang ("" for none)
ARGV[11] state of the verdict              ARGV[12] reasons JSON
ARGV[13] scores, "label=score;" each      ARGV[14] evidence JSON
ARGV[15] model version                     ARGV[16] priority (queue score)
ARGV[17] created_at (ms)                   ARGV[18] now (ms)
ARGV[19] outbox event id                   ARGV[20] outbox event type
ARGV[21] states an edit may start from (comma separated)
ARGV[22] the assumed context, as the signature built below
ARGV[23] approved comments an author needs not to count as new
ARGV[24] per window key, "n" to set it only for a new comment or "a" to set it always
ARGV[25] retention (ms) of a decided comment and its history
ARGV[26] the author's recent window (ms)
ARGV[27] recent rejection rate that puts an active author on pre-moderation (0: never)
ARGV[28] recent decisions needed before that rate counts
ARGV[29] "1" when a published verdict is to get a second look (the semantic stage is on)
ARGV[30] the article's title ("" for none given)   ARGV[31] the article's url ("" for none given)
ARGV[32] when the host last edited the text (ms; "" for not dated)
ARGV[33..] expiry (ms) of each window key (0: observe only)

Derived keys: the site's record (civ:{site}:site), which must exist; the author's erasure marker
(civ:{site}:erasure:<author>), which a new comment must not find; the comment's text (civ:{site}:text:<id>), the pending and reported queue indexes of the comment's article, author and reasons, the
browse indexes of its state (civ:{site}:comments:<state>[:article:<a>|:author:<u>]), the
comment's reports (civ:{site}:reports:<id>), the author's recent decisions
(civ:{site}:recent:<author>) and the second-look queue (civ:{site}:secondlook:queue). The author's standing in the observed context is the status a
moderator set, or "premod" when the recent rejection rate reached ARGV[27].

A title or url given replaces the article's (the host's latest word on its article); one not
given leaves the stored one.

A comment stores the latest edit time it was given (a redelivery of its text dated later moves
it, and is otherwise unchanged). Once it has one, a delivery of another text
dated no later (or not dated: the text as first written) is a host's retry arriving after its
edit, and changes nothing; without edit times, every other text is an edit.

Returns {"created" or "edited", version, created_at, article title or false, article url or
false, when it entered the pending queue or false} (the caller knows every other field it just wrote); {"unchanged", fields} with the stored hash as a flat field/value list (a
redelivery, a delivery older than the stored text, or any delivery of an erased comment); {"context",
signature, approved count} when the context is not the assumed one; {"immutable", fields...}
naming "article.id", "author.id" and/or "parent_id" when a resend or edit changes them (a parent
given or left out counts as a change); {"erasing", the marker's remaining ms} for a new comment of
an author being erased; {"invalid_transition",
state}; or {"gone"} when the site was deleted.
]]

local prefix, site, id, text_hash = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local article, author = ARGV[5], ARGV[7]
local state, now = ARGV[11], ARGV[18]
local decided_by = "auto:" .. ARGV[15]
local retention_ms, recent_ms = tonumber(ARGV[25]), tonumber(ARGV[26])

-- A site deleted since the caller read its record (kept a second in each API process) takes
-- nothing more: what it wrote after the purge would be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return {"gone"}
end

local stored = redis.call("HMGET", KEYS[1], "state", "text_hash", "article_id", "author_id",
  "reasons", "created_at", "erased_at", "parent_id", "edited_at")
local previous = stored[1]
if previous then
  -- Before the redelivery check: the same text under another author, article or parent is not a
  -- redelivery, and answering 200 would tell the host its change was taken.
  local reparented = (stored[8] or "") ~= ARGV[6]
  if stored[3] ~= article or stored[4] ~= author or reparented then
    local moved = {"immutable"}
    if stored[3] ~= article then
      moved[#moved + 1] = "article.id"
    end
    if stored[4] ~= author then
      moved[#moved + 1] = "author.id"
    end
    if reparented then
      moved[#moved + 1] = "parent_id"
    end
    return moved
  end
  -- An erased comment takes no text again: its erased hash cannot tell the host's retry of the
  -- first delivery from an edit, and either would bring back what the author had erased. Nor
  -- does a text dated no later than the stored one (an undated one is the first text): a
  -- webhook retried after the edit it came before would put the old text back.
  local superseded = stored[9]
    and (ARGV[32] == "" or tonumber(ARGV[32]) <= tonumber(stored[9]))
  if stored[2] == text_hash or stored[7] or superseded then
    -- The same text dated later is the host saving it again: the stored edit time follows it,
    -- so a text the host had in between, arriving late, is not taken for the newest.
    if stored[2] == text_hash and not stored[7] and ARGV[32] ~= ""
      and (not stored[9] or tonumber(ARGV[32]) > tonumber(stored[9])) then
      -- The creation's entry is built from the hash until the first change: it is kept first,
      -- with the edit time the comment was created with.
      keep_creation(KEYS[1], KEYS[2])
      redis.call("HSET", KEYS[1], "edited_at", ARGV[32])
    end
    return {"unchanged", comment_fields(prefix, id)}
  end
else
  -- A new comment of an author whose erasure is running, or ended within the minute its marker
  -- outlives it, could be stored where the erasure has already looked, and keep what it was to
  -- erase: it is refused with nothing written, and sent again after the marker it is new data.
  -- (A stored comment not reached yet is erased when it is; one reached takes no text again.)
  local erasing = redis.call("PTTL", prefix .. "erasure:" .. author)
  if erasing ~= -2 then
    return {"erasing", erasing}
  end
end

-- The observed context, in the caller's signature format: kind,status,seasoned,closed,premod,
-- then one flag per window key ("1" when another comment holds it).
local approved, status = unpack(redis.call("HMGET", KEYS[5], "approved", "status"))
local closed, premod, article_title, article_url = unpack(redis.call("HMGET", KEYS[6], "closed",
  "premod", "title", "url"))
local observed = {
  previous and "edit" or "new",
  standing(prefix, author, status, now, recent_ms, tonumber(ARGV[27]), tonumber(ARGV[28])),
  tonumber(approved or "0") >= tonumber(ARGV[23]) and "1" or "0",
  closed == "1" and "1" or "0",
  premod == "1" and "1" or "0",
}
for index = 10, #KEYS do
  local holder = redis.call("GET", KEYS[index])
  observed[#observed + 1] = (holder and holder ~= id) and "1" or "0"
end
local signature = table.concat(observed, ",")
if signature ~= ARGV[22] then
  return {"context", signature, approved or "0"}
end

local outcome, version, previous_text
-- A comment enters the pending queue now; one edited while it waits there keeps its place.
local queued_at = now
if previous then
  if not listed(ARGV[21], previous) then
    return {"invalid_transition", previous}
  end
  outcome = "edited"
  keep_creation(KEYS[1], KEYS[2])
  version = redis.call("HINCRBY", KEYS[1], "version", 1)
  previous_text = comment_text(prefix, id)
  if previous == "pending" then
    queued_at = redis.call("ZSCORE", prefix .. "queue:pending:oldest", id) or now
  end
  dequeue(prefix, "pending", id, article, author, stored[5])
  -- Readers reported the old text; the new one is judged afresh.
  dequeue(prefix, "reported", id, article, author, stored[5])
  redis.call("DEL", prefix .. "reports:" .. id)
  redis.call("HDEL", KEYS[1], "reports")
else
  outcome = "created"
  version = 1
  redis.call("HSET", KEYS[1], "id", id, "article_id", article, "author_id", author,
    "created_at", ARGV[17], "version", 1)
  -- Empty fields are left out (readers take them as empty): bytes in every comment hash.
  if ARGV[6] ~= "" then
    redis.call("HSET", KEYS[1], "parent_id", ARGV[6])
  end
  redis.call("HSETNX", KEYS[6], "id", article)
end
if ARGV[30] ~= "" or ARGV[31] ~= "" then
  redis.call("HSETNX", KEYS[6], "id", article)
  local given = {}
  if ARGV[30] ~= "" then
    article_title = ARGV[30]
    given[#given + 1] = "title"
    given[#given + 1] = ARGV[30]
  end
  if ARGV[31] ~= "" then
    article_url = ARGV[31]
    given[#given + 1] = "url"
    given[#given + 1] = ARGV[31]
  end
  redis.call("HSET", KEYS[6], unpack(given))
end

-- The text in its own string and one field per score keep every value of the hash short
-- (`comment_text` above). An edit of a comment stored whole moves it to this layout.
if previous then
  local stale = {"text", "scores"}
  for _, field in ipairs(redis.call("HKEYS", KEYS[1])) do
    if string.sub(field, 1, 6) == "score:" then
      stale[#stale + 1] = field
    end
  end
  redis.call("HDEL", KEYS[1], unpack(stale))
end
redis.call("SET", text_key(prefix, id), ARGV[9])
-- Every field of the verdict in one HSET, in the order separate calls once wrote them: each
-- call from a script costs Redis about as much as the write it makes.
local fields = {
  "author", ARGV[8], "text_hash", text_hash, "lang", ARGV[10],
  "state", state, "reasons", ARGV[12],
  "model", ARGV[15], "priority", ARGV[16], "decided_by", decided_by, "decided_at", now,
  "updated_at", now, "last_event_id", ARGV[19],
}
if ARGV[32] ~= "" then
  fields[#fields + 1] = "edited_at"
  fields[#fields + 1] = ARGV[32]
end
if ARGV[14] ~= "{}" then
  fields[#fields + 1] = "evidence"
  fields[#fields + 1] = ARGV[14]
elseif previous then
  redis.call("HDEL", KEYS[1], "evidence")
end
for label, score in string.gmatch(ARGV[13], "([^=;]+)=([^;]+)") do
  fields[#fields + 1] = "score:" .. label
  fields[#fields + 1] = score
end
-- A published verdict waits for the semantic stage; an edit queues the new text again (the
-- version it was queued at tells a look at the old text apart). Any other verdict, or the stage
-- switched off, leaves nothing to look at, and an old look describes a text that is gone.
local looked_at = state == "approved" and ARGV[29] == "1"
if looked_at then
  for _, value in ipairs({"look_state", "queued", "look_version", version,
    "look_queued_at", now}) do
    fields[#fields + 1] = value
  end
end
redis.call("HSET", KEYS[1], unpack(fields))

local created_at = stored[6] or ARGV[17]
if state == "pending" then
  enqueue(prefix, "pending", id, article, author, ARGV[16], queued_at, ARGV[12])
else
  redis.call("DEL", KEYS[9])
end
remember_decision(prefix, author, id, state, now, recent_ms)
file_state(prefix, id, article, author, previous, state, now, retention_ms)

for index = 10, #KEYS do
  local ttl = tonumber(ARGV[23 + index])
  local when = string.sub(ARGV[24], index - 9, index - 9)
  if ttl > 0 and (when == "a" or not previous) then
    redis.call("SET", KEYS[index], id, "PX", ttl)
  end
end

local look_queue = prefix .. "secondlook:queue"
if looked_at then
  redis.call("ZADD", look_queue, now, id)
  if previous then
    redis.call("HDEL", KEYS[1], "look_scores", "look_at", "look_model", "look_failures")
  end
else
  redis.call("ZREM", look_queue, id)
  if previous then
    redis.call("HDEL", KEYS[1], "look_state", "look_version", "look_queued_at", "look_scores",
      "look_at", "look_model", "look_failures")
  end
end

count_author(KEYS[5], previous, state, now, true)
count_decision(KEYS[7], KEYS[8], "auto", state)
record(KEYS[2], KEYS[3], KEYS[4], {
  id = id, site = site, version = version, now = now, actor = decided_by,
  action = outcome == "created" and "create" or "edit", from = previous, to = state,
  reasons = ARGV[12], note = "null", model = cjson.encode(ARGV[15]),
  event_id = ARGV[19], event_type = ARGV[20], previous_text = previous_text,
  edited_at = ARGV[32] ~= "" and ARGV[32] or nil,
})
retain(prefix, id, state == "pending" and 0 or retention_ms)
return {outcome, version, created_at, article_title, article_url,
  state == "pending" and queued_at or false}
