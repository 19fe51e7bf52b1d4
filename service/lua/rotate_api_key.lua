--[[
Give a site a new api key. The current one joins the previous keys, each valid until its own
grace deadline; expired ones are dropped, and beyond ARGV[4] kept the oldest goes first.

KEYS[1]  site hash                  civ:{site}:site

ARGV[1]  sha256 of the new key      ARGV[2]  now (ms)
ARGV[3]  current key valid until (ms)
ARGV[4]  previous keys kept at most

The list is stored as previous_api_keys, JSON [[sha256, valid until ms], ...] oldest first;
previous_api_key_hash and previous_api_key_valid_until keep naming the newest of them.

Returns the sha256 of the key it replaced, then those of keys it ended before their deadline
(their indexes go now), or false when the site does not exist.
]]

local current = redis.call("HGET", KEYS[1], "api_key_hash")
if not current then
  return false
end
local fresh, ended = grace_list(KEYS[1], "previous_api_keys", "previous_api_key_hash",
  "previous_api_key_valid_until", current, tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))
local reply = {current}
for _, hash in ipairs(ended) do
  reply[#reply + 1] = hash
end
redis.call("HSET", KEYS[1], "api_key_hash", ARGV[1], "previous_api_keys", cjson.encode(fresh),
  "previous_api_key_hash", current, "previous_api_key_valid_until", ARGV[3],
  "updated_at", ARGV[2])
return reply
