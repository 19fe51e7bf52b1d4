--[[
Hand back comments of one site that a stopping worker took but did not look at (its pass cut
short): each is due again at once, in its place in the queue (when it was queued), so the next
worker takes it at its start instead of when the lease ends. One whose lease is no longer the
stopping worker's (it ran out and another worker took the comment, or a look or an edit moved
it since) is left as it is.

KEYS[1]  second-look queue zset     civ:{site}:secondlook:queue

ARGV[1]  the end (ms) of the lease the comments were taken under
ARGV[2..] pairs of comment id and when it was queued (ms)

Returns how many were handed back.
]]

local lease_until = tonumber(ARGV[1])
local handed_back = 0
for index = 2, #ARGV, 2 do
  local id = ARGV[index]
  if tonumber(redis.call("ZSCORE", KEYS[1], id)) == lease_until then
    redis.call("ZADD", KEYS[1], "XX", ARGV[index + 1], id)
    handed_back = handed_back + 1
  end
end
return handed_back
