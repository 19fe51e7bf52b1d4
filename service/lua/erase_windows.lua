--[[
Forget the flood and duplicate windows an author's comments hold (their erasure): an address's
flood window is named by the address a comment came from, a duplicate window by a hash of its
text and the author. Each holds the id of the comment that set it. A duplicate window of the
author, and an address's window one of their comments holds, are removed, so neither their
address nor a fingerprint of their text stays tied to them; the next comment from there is not
held for them.

KEYS[1..]  window strings          civ:{site}:duplicate:<sha256 hex>:<author> and
                                   civ:{site}:flood:ip:<address> (any; others are skipped)

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  author id

Returns how many windows were removed.
]]

local prefix, author = ARGV[1], ARGV[2]
local duplicates = prefix .. "duplicate:"
local removed = 0
for _, key in ipairs(KEYS) do
  local owner
  if string.sub(key, 1, #duplicates) == duplicates then
    -- The text's hash is 64 hex digits: the author id is all that follows it and its colon.
    owner = string.sub(key, #duplicates + 66)
  else
    local holder = redis.call("GET", key)
    owner = holder and redis.call("HGET", prefix .. "comment:" .. holder, "author_id")
  end
  if owner == author then
    redis.call("DEL", key)
    removed = removed + 1
  end
end
return removed
