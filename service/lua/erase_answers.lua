--[[
Forget the kept answers that carry an author's data (their erasure): a decision's answer holds
its comment, text and author fields included, and a status change's the author's counts and
standing, sealed but readable by whoever holds its key. An answer names the authors whose data
it carries in its record's "authors" field
(idempotency_finish.lua); a retry of a forgotten request runs it again, and a decision finds
itself made (decide.lua) rather than acting twice.

KEYS[1..]  idempotency records      civ:{site}:idempotency:<digest> (any; others are skipped)

ARGV[1]  author id

Returns how many records were removed.
]]

local removed = 0
for _, key in ipairs(KEYS) do
  local authors = redis.call("HGET", key, "authors")
  if authors then
    for _, author in ipairs(cjson.decode(authors)) do
      if author == ARGV[1] then
        redis.call("DEL", key)
        removed = removed + 1
        break
      end
    end
  end
end
return removed
