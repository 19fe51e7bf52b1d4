--[[
Trim the outbox to about its newest ARGV[2] entries, but never below what the delivery group
has admitted: an entry is only removed once it is recorded as a delivery (or was acknowledged
because its site has no callback). Without the group (no worker ever ran) nothing is removed.

KEYS[1]  outbox stream              civ:{site}:outbox

ARGV[1]  consumer group name        ARGV[2]  entries to keep at least

Returns the number of entries removed.
]]

local keep = tonumber(ARGV[2])
if redis.call("XLEN", KEYS[1]) <= keep then
  return 0
end
local admitted = nil
for _, info in ipairs(redis.call("XINFO", "GROUPS", KEYS[1])) do
  local fields = {}
  for index = 1, #info, 2 do
    fields[info[index]] = info[index + 1]
  end
  if fields.name == ARGV[1] then
    -- The group acknowledges inside the admitting script, so nothing is pending below this id.
    if fields.pending ~= 0 then
      return 0
    end
    admitted = fields["last-delivered-id"]
  end
end
if not admitted then
  return 0
end
-- The oldest of the entries to keep; everything older than both bounds may go.
local newest = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", keep)
local boundary = newest[#newest][1]
local function older(a, b)
  local a_ms, a_seq = string.match(a, "(%d+)-(%d+)")
  local b_ms, b_seq = string.match(b, "(%d+)-(%d+)")
  if tonumber(a_ms) ~= tonumber(b_ms) then
    return tonumber(a_ms) < tonumber(b_ms)
  end
  return tonumber(a_seq) < tonumber(b_seq)
end
if older(admitted, boundary) then
  -- MINID keeps the given id; the admitted entry itself is then kept, which is harmless.
  boundary = admitted
end
return redis.call("XTRIM", KEYS[1], "MINID", boundary)
