--[[
Put stored comments into the indexes that came after them: the browse indexes of their state
(whole, per article, per author) and, for a comment in the pending or reported queue, that
queue's per-reason indexes. Comments stored before those indexes existed are otherwise missing
from the browse listing and the reason filter until their next change.

KEYS     the comment hashes (civ:{site}:comment:<id>), one site
ARGV[1]  site key prefix "civ:{site}:"

Only adds what is missing (ZADD NX), with the score the comment would have had: the time of its
last decision for a browse index, and its score in the queue's own index for a reason index. So
running it again, or on comments indexed already, changes nothing. A browse index of a decided
state lives at least as long as each comment put in it (file_state's keep_index).

Returns the number of comments looked at; false when the site was deleted (civ:{site}:site)
since the reindex began.
]]

local prefix = ARGV[1]
-- What this filed behind the site's purge would be left for a new site of that id.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return false
end
local looked = 0
for _, key in ipairs(KEYS) do
  local f = redis.call("HMGET", key, "id", "state", "article_id", "author_id", "decided_at",
    "updated_at", "created_at", "reasons")
  local id, state, article, author = f[1], f[2], f[3], f[4]
  if id and state and article and author then
    looked = looked + 1
    local when = f[5] or f[6] or f[7] or 0
    -- What is left of the comment's retention (-1 while kept until decided).
    local kept = redis.call("PTTL", key)
    local held = reported_indexes(prefix, article, author)
    for number, index in ipairs(state_indexes(prefix, state, article, author)) do
      redis.call("ZADD", index, "NX", when, id)
      if state ~= "pending" and kept < 0 then
        redis.call("PERSIST", index)
      elseif state ~= "pending" then
        keep_index(index, state == "approved" and held[number], kept)
      end
    end
    for _, queue in ipairs({"pending", "reported"}) do
      for _, order in ipairs(ORDERS) do
        local score = redis.call("ZSCORE", prefix .. "queue:" .. queue .. ":" .. order, id)
        if score then
          for _, index in ipairs(queue_indexes(prefix, queue, order, article, author, f[8])) do
            redis.call("ZADD", index, "NX", score, id)
          end
        end
      end
    end
  end
end
return looked
