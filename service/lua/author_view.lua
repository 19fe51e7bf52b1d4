--[[
An author as the author view shows it: the stored hash, the decisions within the site's recent
window, and the standing the author's next comment meets, by the rule ingest applies itself
(``standing`` in _lib.lua), so that the view and intake never disagree.

KEYS[1]  author hash                civ:{site}:author:<author>

ARGV[1]  site key prefix (civ:{site}:)     ARGV[2]  author id
ARGV[3]  now (ms)                          ARGV[4]  recent window (ms)
ARGV[5]  premod rejection rate             ARGV[6]  premod minimum decisions

Returns {fields (flat, empty for an author never seen), decided, rejected, standing}.
]]

local prefix, author, now, window_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local decided, rejected = recent_counts(prefix, author, now, window_ms)
local status = redis.call("HGET", KEYS[1], "status")
return {
  redis.call("HGETALL", KEYS[1]),
  decided,
  rejected,
  standing(prefix, author, status, now, window_ms, tonumber(ARGV[5]), tonumber(ARGV[6])),
}
