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
local fresh = grace_list(KEYS[1], "previous_secrets", "previous_secret", "previous_valid_until",
  current, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
redis.call("HSET", KEYS[1], "webhook_secret", ARGV[1], "previous_secrets", cjson.encode(fresh),
  "previous_secret", current, "previous_valid_until", ARGV[3], "updated_at", ARGV[2])
return 1
