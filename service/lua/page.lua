--[[
Read one page of a queue index or a browse index, and count the index within the bounds. Paging
is by the last item's (score, id), not by offset, so comments added or removed meanwhile never
shift a page: nothing is skipped or repeated. Within one score Redis orders members by id, which
breaks ties.

KEYS[1]  queue index zset           civ:{site}:queue:<queue>:<order>[:reason:<r>][:article:<a>|:author:<u>]
         or browse index zset       civ:{site}:comments:<state>[:article:<a>|:author:<u>]

KEYS[2]  optional: a second index of the same queue, order and reason or of the same state (the
         author's, KEYS[1] being the article's): only ids in both are listed and counted, walking
         the smaller one

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  "1" for highest score first
ARGV[3]  how many                          ARGV[4]  cursor score ("" for the first page)
ARGV[5]  cursor id
ARGV[6]  lowest score listed ("-inf")      ARGV[7]  highest score listed ("+inf")
ARGV[8]  members scored below this ("" for none) are looked at first, up to PAGE_PRUNE of them,
         and those whose comment is gone are dropped: decided comments past the site's
         retention, whose hashes have expired (one kept longer, in the reported queue, stays)

Derived keys: civ:{site}:comment:<id> and civ:{site}:lease:<id> of each item.

Pending and reported comments never expire, so an index should only name existing comments; an
id whose hash is gone all the same (a decided comment past its retention that an index kept) is
removed from the index read, and the page comes back shorter rather than naming it forever.

Returns {members within the bounds, {{id, score, fields, lease holder or false, lease ms left},
...}}.
]]

-- Filing keeps a browse index nearly free of expired comments (lib's file_state); a page looks at
-- more, bounded all the same: after a retention cut, the comments kept under the longer one would
-- be looked at again on every page.
local PAGE_PRUNE = 1000
local COUNT_BATCH = 1000

local prefix, descending, wanted = ARGV[1], ARGV[2] == "1", tonumber(ARGV[3])
local cursor_score, cursor_id = ARGV[4], ARGV[5]
local low, high = ARGV[6], ARGV[7]
if ARGV[8] ~= "" then
  for _, key in ipairs(KEYS) do
    prune_index(prefix, key, ARGV[8], PAGE_PRUNE)
  end
end

-- Byte order, as Redis sorts equal scores (Lua's "<" on strings follows the server's locale).
local function before(a, b)
  for index = 1, math.min(#a, #b) do
    local x, y = string.byte(a, index), string.byte(b, index)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- An article and an author together: the smaller of their indexes is walked (an author's queued
-- comments are usually few), each id kept only when the other holds it too; the scores are the
-- same in both, so a cursor of one is a cursor of the other.
local walked, other = KEYS[1], KEYS[2]
if other and redis.call("ZCARD", other) < redis.call("ZCARD", walked) then
  walked, other = other, walked
end
local batch = other and math.max(wanted, 100) or wanted

local picked = {}
local function take(id, score)
  if #picked < wanted and (not other or redis.call("ZSCORE", other, id)) then
    picked[#picked + 1] = {id, score}
  end
end

-- Takes the ids from `from` towards `to` (walking order) until the page is full.
local function walk(from, to)
  local offset = 0
  while #picked < wanted do
    local items
    if descending then
      items = redis.call("ZREVRANGEBYSCORE", walked, from, to, "WITHSCORES", "LIMIT", offset, batch)
    else
      items = redis.call("ZRANGEBYSCORE", walked, from, to, "WITHSCORES", "LIMIT", offset, batch)
    end
    for index = 1, #items, 2 do
      take(items[index], items[index + 1])
    end
    if #items < 2 * batch then
      break
    end
    offset = offset + batch
  end
end

if cursor_score == "" then
  if descending then
    walk(high, low)
  else
    walk(low, high)
  end
else
  -- Members sharing the cursor's score: those after the cursor id in walking order come first.
  local ties = redis.call("ZRANGEBYSCORE", walked, cursor_score, cursor_score)
  local from, to, step = 1, #ties, 1
  if descending then
    from, to, step = #ties, 1, -1
  end
  for index = from, to, step do
    local id = ties[index]
    local after = descending and before(id, cursor_id) or (not descending and before(cursor_id, id))
    if after then
      take(id, cursor_score)
    end
  end
  if descending then
    walk("(" .. cursor_score, low)
  else
    walk("(" .. cursor_score, high)
  end
end

local page = {}
for _, item in ipairs(picked) do
  local fields = comment_fields(prefix, item[1])
  if #fields == 0 then
    for _, key in ipairs(KEYS) do
      redis.call("ZREM", key, item[1])
    end
  end
  local lease = prefix .. "lease:" .. item[1]
  local holder = redis.call("GET", lease)
  page[#page + 1] = {
    item[1], item[2], fields, holder, holder and redis.call("PTTL", lease) or 0,
  }
end
if other and low == "-inf" and high == "+inf" then
  return {redis.call("ZINTERCARD", 2, walked, other), page}
end
if other then
  -- ZINTERCARD takes no score bounds (a browse listing's decision times): the smaller index is
  -- walked within them, as for the page, so the count costs what ZINTERCARD would.
  local count, offset = 0, 0
  while true do
    local ids = redis.call("ZRANGEBYSCORE", walked, low, high, "LIMIT", offset, COUNT_BATCH)
    for _, id in ipairs(ids) do
      if redis.call("ZSCORE", other, id) then
        count = count + 1
      end
    end
    if #ids < COUNT_BATCH then
      break
    end
    offset = offset + COUNT_BATCH
  end
  return {count, page}
end
return {redis.call("ZCOUNT", KEYS[1], low, high), page}
