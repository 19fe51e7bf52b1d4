--[[
Replace an article's metadata and settings (PUT semantics: fields not given are removed).

KEYS[1]  article hash               civ:{site}:article:<article>
KEYS[2]  site record                civ:{site}:site

ARGV: field, value, field, value, ... (id, url?, title?, closed, premod, updated_at)

Returns 1; 0 when the site was deleted (since the caller read its record).
]]

if redis.call("EXISTS", KEYS[2]) == 0 then
  return 0
end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
