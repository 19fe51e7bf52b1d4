--[[
Erase what one author wrote and who they are from their comments (data-protection erasure):
text, evidence, text hash and every author field but the id, and the text an edit replaced from
the comment's history (civ:{site}:text:<id> and civ:{site}:history:<id>, derived from the
comment's key), and the second look a comment still awaited. States,
versions, the rest of the history, counts and the audit stream keep what was decided, which
holds no personal data. The author's reports of any comment (civ:{site}:reports:<id>) lose who
made them and their note: each stays as "erased <n>" (no reporter id holds a space) with its
reason and time, so the comment's count, and the reported queue it brought it to, still hold.
Readers' reports of the author's comments lose their note, which may quote the erased text.

KEYS[1..]  comment hashes           civ:{site}:comment:<id> (any comments; only the author's are
                                    erased, the author's reports of any are kept anonymous)

ARGV[1]  author id                  ARGV[2]  the author JSON left in place, {"id": ...}
ARGV[3]  now (ms)

Returns the ids of the comments erased.
]]

-- The author's report in `reports` keeps its reason and time under a name of no reader.
local function keep_anonymous(reports, author)
  local report = redis.call("HGET", reports, author)
  if not report then
    return
  end
  local number = 1
  while redis.call("HEXISTS", reports, "erased " .. number) == 1 do
    number = number + 1
  end
  local kept = cjson.decode(report)
  redis.call("HSET", reports, "erased " .. number,
    cjson.encode({reason = kept.reason, at = kept.at}))
  redis.call("HDEL", reports, author)
end

local erased = {}
for _, key in ipairs(KEYS) do
  local stored = redis.call("HMGET", key, "author_id", "id")
  local site_prefix = stored[2] and string.sub(key, 1, #key - #("comment:" .. stored[2]))
  if site_prefix then
    keep_anonymous(site_prefix .. "reports:" .. stored[2], ARGV[1])
  end
  if stored[1] == ARGV[1] then
    redis.call("HSET", key, "author", ARGV[2], "evidence", "{}", "text_hash", "",
      "erased_at", ARGV[3])
    -- A second look still to come, or reading the text now, would judge a text that is gone:
    -- without the version it was queued at, the queue drops it and a look running is stale.
    redis.call("HDEL", key, "look_version")
    -- The text is a string of its own, or a field of a comment stored before that (ingest).
    if not redis.call("SET", site_prefix .. "text:" .. stored[2], "", "KEEPTTL", "XX") then
      redis.call("HSET", key, "text", "")
    end
    -- Readers' notes on the comment may quote what it said: each of its reports keeps its
    -- reader, reason and time, without the note.
    local reports = site_prefix .. "reports:" .. stored[2]
    local each = redis.call("HGETALL", reports)
    for index = 1, #each, 2 do
      local kept = cjson.decode(each[index + 1])
      if kept.note ~= nil and kept.note ~= cjson.null then
        redis.call("HSET", reports, each[index],
          cjson.encode({reason = kept.reason, at = kept.at}))
      end
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
