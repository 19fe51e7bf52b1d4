--[[
Erase what one author wrote and who they are from their comments (data-protection erasure):
text, evidence, text hash and every author field but the id. States, versions, history, counts
and the audit stream keep what was decided, which holds no personal data.

KEYS[1..]  comment hashes           civ:{site}:comment:<id> (any comments; others are skipped)

ARGV[1]  author id                  ARGV[2]  the author JSON left in place, {"id": ...}
ARGV[3]  now (ms)

Returns the ids of the comments erased.
]]

local erased = {}
for _, key in ipairs(KEYS) do
  local stored = redis.call("HMGET", key, "author_id", "id")
  if stored[1] == ARGV[1] then
    redis.call("HSET", key, "text", "", "author", ARGV[2], "evidence", "{}", "text_hash", "",
      "erased_at", ARGV[3])
    erased[#erased + 1] = stored[2]
  end
end
return erased
