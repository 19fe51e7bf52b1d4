--[[
Store the evidence spans of a comment that intake decided without waiting for them: only while
the comment still holds the text that was explained (an edit or an erasure since then makes them
wrong; the edit's own spans follow). A decision changes the version, not the text, so the spans
of a comment decided before they arrive are stored all the same.

KEYS[1]  comment hash               civ:{site}:comment:<id>

ARGV[1]  sha256 of the text explained      ARGV[2]  evidence JSON

Returns 1 when stored, 0 when the text changed or the comment is gone.
]]

-- An erasure leaves the text hash empty: no text, so no spans either.
local stored = redis.call("HGET", KEYS[1], "text_hash")
if not stored or stored == "" or stored ~= ARGV[1] then
  return 0
end
redis.call("HSET", KEYS[1], "evidence", ARGV[2])
return 1
