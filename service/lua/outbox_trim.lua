--[[
Trim the outbox to about its newest ARGV[2] entries, but never below what the delivery group
has admitted: an entry is only removed once it is recorded as a delivery (or was acknowledged
because its site has no callback). Without the group (no worker ever ran) nothing is removed.

What goes is what is both older than the last admitted entry and older than the newest ARGV[2]:
the outbox keeps its newest max(ARGV[2], waiting + 1) entries, where waiting is how many entries
the group has not admitted yet (its lag). The lag makes that one XTRIM, without copying the
entries kept into the script (10,000 by default, and Redis stalled while it copied them):
- waiting + 1 >= ARGV[2]: XTRIM MINID the last admitted id, which can only ever remove admitted
  entries, whatever the lag says (an overstated lag could only leave fewer admitted entries than
  ARGV[2]; Redis's counts drift only once a stream is trimmed past a group's position, which
  this trim never does);
- fewer wait: XTRIM MAXLEN = ARGV[2], once the newest waiting + 1 entries (few, unless the worker
  is far behind) are seen to reach an admitted one, so no unadmitted entry is among those removed
  even if the lag were understated.
Only when Redis cannot tell the lag (nil: the stream had entries deleted after the group's
position), or the check finds it wrong, are the newest ARGV[2] entries listed to find the
boundary.

KEYS[1]  outbox stream              civ:{site}:outbox

ARGV[1]  consumer group name        ARGV[2]  entries to keep at least

Returns the number of entries removed.
]]

local keep = tonumber(ARGV[2])
local length = redis.call("XLEN", KEYS[1])
if length <= keep then
  return 0
end
local admitted, lag = nil, nil
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
    -- A number, or false when Redis cannot tell (a nil reply).
    lag = fields.lag
  end
end
if not admitted then
  return 0
end
local function older(a, b)
  local a_ms, a_seq = string.match(a, "(%d+)-(%d+)")
  local b_ms, b_seq = string.match(b, "(%d+)-(%d+)")
  if tonumber(a_ms) ~= tonumber(b_ms) then
    return tonumber(a_ms) < tonumber(b_ms)
  end
  return tonumber(a_seq) < tonumber(b_seq)
end
if type(lag) == "number" then
  local waiting = math.min(lag, length)
  if waiting + 1 >= keep then
    -- The last admitted entry is no newer than the keep-th newest. MINID keeps the given id;
    -- the admitted entry itself is then kept, which is harmless.
    return redis.call("XTRIM", KEYS[1], "MINID", admitted)
  end
  local newest = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", waiting + 1)
  if not older(admitted, newest[#newest][1]) then
    -- At most `waiting` entries are newer than the admitted one, fewer than keep.
    return redis.call("XTRIM", KEYS[1], "MAXLEN", "=", keep)
  end
end
-- The oldest of the entries to keep; everything older than both bounds may go.
local newest = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", keep)
local boundary = newest[#newest][1]
if older(admitted, boundary) then
  -- MINID keeps the given id; the admitted entry itself is then kept, which is harmless.
  boundary = admitted
end
return redis.call("XTRIM", KEYS[1], "MINID", boundary)
