--[[
Return a site to what it ran on before its last site model change: pop the head of its history
and make the entry under it active (0, the global model alone, when none is). In one step, so
that two rollbacks at once go back two changes, and a refit storing its version meanwhile is
either rolled back or not, never half. The version popped is deleted unless the history still
names it.

KEYS[1]  the site's history list    civ:{site}:sitemodel:history
KEYS[2]  the site's state hash      civ:{site}:sitemodel:state

ARGV[1]  the version keys' prefix, civ:{site}:sitemodel:version:

Returns the version now active, or -1 when the history is empty (nothing to roll back).
]]
local head = redis.call('LPOP', KEYS[1])
if not head then
  return -1
end
local restored = redis.call('LINDEX', KEYS[1], 0) or '0'
redis.call('HSET', KEYS[2], 'active', restored)
if head ~= '0' and not redis.call('LPOS', KEYS[1], head) then
  redis.call('DEL', ARGV[1] .. head)
end
return tonumber(restored)
