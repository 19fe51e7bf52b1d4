--[[
Give back leases a moderator holds: the ids given, or all of them. Leases held by someone else
are left alone.

KEYS[1]  the moderator's claims     civ:{site}:claims:<moderator>
KEYS[2]  audit stream               civ:{site}:audit (one "release" entry per lease given back)

ARGV[1]  site key prefix "civ:{site}:"     ARGV[2]  moderator id
ARGV[3]  now (ms)
ARGV[4..] comment ids (none: every id in the moderator's claims)

Derived keys: civ:{site}:lease:<id> of each id.

Returns the ids whose lease was released; false when the site was deleted (civ:{site}:site,
since the caller read its record).
]]

local prefix, moderator = ARGV[1], ARGV[2]

-- A process may keep a deleted site's record a second: what it wrote now could land behind the
-- purge, for a new site of that id to inherit.
if redis.call("EXISTS", prefix .. "site") == 0 then
  return false
end
local ids = {}
if #ARGV > 3 then
  for index = 4, #ARGV do
    ids[#ids + 1] = ARGV[index]
  end
else
  ids = redis.call("ZRANGE", KEYS[1], 0, -1)
end

local released = {}
for _, id in ipairs(ids) do
  local lease = prefix .. "lease:" .. id
  if redis.call("GET", lease) == moderator then
    redis.call("DEL", lease)
    record_lease(KEYS[2], id, "release", moderator, ARGV[3], ARGV[3])
    released[#released + 1] = id
  end
  redis.call("ZREM", KEYS[1], id)
end
return released
