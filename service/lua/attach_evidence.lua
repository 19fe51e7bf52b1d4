--[[
Store the evidence spans of a comment that intake decided without waiting for them: only while
the comment is still the version that was explained, with the same text (an edit or an erasure
since then makes them wrong; the edit's own spans follow).

KEYS[1]  comment hash               civ:{site}:comment:<id>

ARGV[1]  the comment's version when it was decided    ARGV[2]  sha256 of its text
ARGV[3]  evidence JSON

Returns 1 when stored, 0 when the comment moved on or is gone.
]]

local stored = redis.call("HMGET", KEYS[1], "version", "text_hash")
if stored[1] ~= ARGV[1] or stored[2] ~= ARGV[2] then
  return 0
end
redis.call("HSET", KEYS[1], "evidence", ARGV[3])
return 1
