--[[
Issue a new webhook secret. The current one joins the previous secrets, each valid until its own
grace deadline; expired ones are dropped, and beyond ARGV[4] kept the oldest goes first (a
signature header carries one v1 per valid secret).

KEYS[1]  site hash                  civ:{site}:site

ARGV[1]  new secret                 ARGV[2]  now (ms)
ARGV[3]  current secret valid until (ms)
ARGV[4]  previous secrets kept at most

The list is stored as previous_secrets, JSON [[secret, valid until ms], ...] oldest first;
previous_secret and previous_valid_until keep naming the newest of them.

Returns 1, or 0 when the site does not exist.
]]

local current = redis.call("HGET", KEYS[1], "webhook_secret")
if not current then
  return 0
end
local now = tonumber(ARGV[2])
local stored = redis.call("HMGET", KEYS[1], "previous_secrets", "previous_secret",
  "previous_valid_until")
local kept
if stored[1] and stored[1] ~= "" then
  kept = cjson.decode(stored[1])
elseif stored[2] and stored[2] ~= "" then
  kept = {{stored[2], tonumber(stored[3] or "0")}}
else
  kept = {}
end
local fresh = {}
for _, entry in ipairs(kept) do
  if tonumber(entry[2]) > now then
    fresh[#fresh + 1] = entry
  end
end
fresh[#fresh + 1] = {current, tonumber(ARGV[3])}
while #fresh > tonumber(ARGV[4]) do
  table.remove(fresh, 1)
end
redis.call("HSET", KEYS[1], "webhook_secret", ARGV[1], "previous_secrets", cjson.encode(fresh),
  "previous_secret", current, "previous_valid_until", ARGV[3], "updated_at", ARGV[2])
return 1
