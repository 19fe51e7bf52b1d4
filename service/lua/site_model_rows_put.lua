--[[
Write the rows a refit made of the site's new labels, each only while the label entry it was made
from is still in the site's label log: an author erased while their rows were being encoded
leaves no row behind (the erasure deleted the entries, and found no row to delete yet). A row
given without an entry id is written as it is.

KEYS[1]  the site's rows hash       civ:{site}:sitemodel:rows
KEYS[2]  the site's label log       civ:{site}:labels

ARGV[1]  the author index keys' prefix, civ:{site}:sitemodel:author:
ARGV[2..]  quadruplets: row key, label entry id (or ""), author id (or ""), the row's JSON

Returns how many rows were written.
]]
local written = 0
for i = 2, #ARGV, 4 do
  local entry = ARGV[i + 1]
  if entry == '' or #redis.call('XRANGE', KEYS[2], entry, entry) > 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 3])
    if ARGV[i + 2] ~= '' then
      redis.call('SADD', ARGV[1] .. ARGV[i + 2], ARGV[i])
    end
    written = written + 1
  end
end
return written
