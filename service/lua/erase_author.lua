--[[
Erase what one author wrote and who they are from their comments (data-protection erasure):
text, evidence, text hash and every author field but the id, and the text an edit replaced from
the comment's history (civ:{site}:text:<id> and civ:{site}:history:<id>, derived from the
comment's key), and the second look a comment still awaited. States,
versions, the rest of the history, counts and the audit stream keep what was decided, which
holds no personal data.

KEYS[1..]  comment hashes           civ:{site}:comment:<id> (any comments; others are skipped)

ARGV[1]  author id                  ARGV[2]  the author JSON left in place, {"id": ...}
ARGV[3]  now (ms)

Returns the ids of the comments erased.
]]

local erased = {}
for _, key in ipairs(KEYS) do
  local stored = redis.call("HMGET", key, "author_id", "id")
  if stored[1] == ARGV[1] then
    local site_prefix = string.sub(key, 1, #key - #("comment:" .. stored[2]))
    redis.call("HSET", key, "author", ARGV[2], "evidence", "{}", "text_hash", "",
      "erased_at", ARGV[3])
    -- A second look still to come, or reading the text now, would judge a text that is gone:
    -- without the version it was queued at, the queue drops it and a look running is stale.
    redis.call("HDEL", key, "look_version")
    -- The text is a string of its own, or a field of a comment stored before that (ingest).
    if not redis.call("SET", site_prefix .. "text:" .. stored[2], "", "KEEPTTL", "XX") then
      redis.call("HSET", key, "text", "")
    end
    local history = site_prefix .. "history:" .. stored[2]
    local entries = redis.call("LRANGE", history, 0, -1)
    for index, entry in ipairs(entries) do
      -- previous_text is an edit entry's last field (lib's record), so cutting it keeps the JSON.
      local at = string.find(entry, ',"previous_text":', 1, true)
      if at then
        redis.call("LSET", history, index - 1, string.sub(entry, 1, at - 1) .. "}")
      end
    end
    erased[#erased + 1] = stored[2]
  end
end
return erased
