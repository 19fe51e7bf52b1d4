--[[
Write back the rows a refit encoded again (fitted on another global model, or kept before the
model had a semantic stage), each only if it is still the row the refit read: a row an erasure
deleted, or a newer label replaced, meanwhile stays as it is.

KEYS[1]  the site's rows hash       civ:{site}:sitemodel:rows

ARGV     triplets: row key, sha1 of the row as read, the row encoded again

Returns how many rows were written.
]]
local written = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current and redis.sha1hex(current) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    written = written + 1
  end
end
return written
