--[[
Store the evidence spans of a comment that intake decided without waiting for them: only while
the comment still holds the text that was explained (an edit or an erasure since then makes them
wrong; the edit's own spans follow). A decision changes the version, not the text, so the spans
of a comment decided before they arrive are stored all the same. Spans that change what the
comment had are recorded in the audit stream (not the outbox: the host is not told), so the
consoles showing the comment mark them without a reload.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  audit stream               civ:{site}:audit
KEYS[3]  site record                civ:{site}:site

ARGV[1]  sha256 of the text explained      ARGV[2]  evidence JSON
ARGV[3]  comment id                        ARGV[4]  now (ms)

Returns 1 when stored, 0 when the text changed or the comment or its site is gone.
]]

-- A site deleted meanwhile is being purged: an entry written now could land behind the purge.
if redis.call("EXISTS", KEYS[3]) == 0 then
  return 0
end

-- An erasure leaves the text hash empty: no text, so no spans either.
local stored, evidence, model = unpack(redis.call("HMGET", KEYS[1], "text_hash", "evidence",
  "model"))
if not stored or stored == "" or stored ~= ARGV[1] then
  return 0
end
if (evidence or "") == ARGV[2] then
  return 1
end
redis.call("HSET", KEYS[1], "evidence", ARGV[2])
redis.call("XADD", KEYS[2], "MAXLEN", "~", AUDIT_MAXLEN, "*",
  "comment_id", ARGV[3], "action", "evidence", "actor", "auto:" .. (model or ""), "at", ARGV[4])
return 1
