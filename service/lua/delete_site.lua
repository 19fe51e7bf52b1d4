--[[
Delete a site's record and its moderators, so the site answers 404 and every token of it 401 at
once; the rest of its keys are purged afterwards in bounded steps.

KEYS[1]  site hash                  civ:{site}:site
KEYS[2]  moderators hash            civ:{site}:moderators

Returns {api key hashes...} (the current one, then every previous one) followed by "", then the
digest of the keyed request that created the site ("" for none), then the moderators' stored
JSON; false when the site does not exist.
]]

local keys = redis.call("HMGET", KEYS[1], "api_key_hash", "previous_api_key_hash",
  "previous_api_keys", "created_by_request")
if not keys[1] then
  return false
end
local reply = {keys[1]}
if keys[2] and keys[2] ~= "" then
  reply[#reply + 1] = keys[2]
end
if keys[3] and keys[3] ~= "" then
  for _, entry in ipairs(cjson.decode(keys[3])) do
    if entry[1] ~= keys[2] then
      reply[#reply + 1] = entry[1]
    end
  end
end
reply[#reply + 1] = ""
reply[#reply + 1] = keys[4] or ""
for _, stored in ipairs(redis.call("HVALS", KEYS[2])) do
  reply[#reply + 1] = stored
end
redis.call("DEL", KEYS[1], KEYS[2])
return reply
