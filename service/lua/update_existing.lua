--[[
Set fields of a hash that must already exist (a site), so a write racing a missing site never
creates half a record; optionally only while one field still holds the value the caller read, so
two read-merge-write updates (a policy patch) cannot overwrite each other.

KEYS[1]  the hash

ARGV[1]  the guarded field, or "" for none
ARGV[2]  the value it must still hold
ARGV[3..]: field, value, field, value, ...

Returns 1 when written, 0 when the hash does not exist, -1 when the guarded field has changed.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
if ARGV[1] ~= "" and redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then
  return -1
end
redis.call("HSET", KEYS[1], unpack(ARGV, 3))
return 1
