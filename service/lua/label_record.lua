--[[
Append one training label to the site's label log, which keeps about its newest entries; not
while the erasure of the label's author runs or has just ended: a decision that read the
author's text before their comments were erased would otherwise put it back after the erasure
removed their labels.

KEYS[1]  the site's label log               civ:{site}:labels
KEYS[2]  (when the label names its author) the author's erasure marker
                                            civ:{site}:erasure:<author>

ARGV[1]  about how many entries the log keeps
ARGV[2..]  the entry's fields and values

Returns the entry id, or "" when the author is being erased and nothing was written.
]]

if KEYS[2] and redis.call("EXISTS", KEYS[2]) == 1 then
  return ""
end
return redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[1], "*", unpack(ARGV, 2))
