--[[
Replace an article's metadata and settings (PUT semantics: fields not given are removed).

KEYS[1]  article hash               civ:{site}:article:<article>

ARGV: field, value, field, value, ... (id, url?, title?, closed, premod, updated_at)

Returns 1.
]]

redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
