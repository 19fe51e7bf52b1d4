--[[
A moderator sets an author's standing (active, premod, banned, trusted), recorded in the audit
stream in the same step. The author's counters are left alone; an author never seen before gets a
record holding only the status, so an id can be banned before it posts.

KEYS[1]  author hash                civ:{site}:author:<author>
KEYS[2]  audit stream               civ:{site}:audit
KEYS[3]  site record                civ:{site}:site
KEYS[4]  the ban's rejections       civ:{site}:ban:rejected:<author>

ARGV[1]  author id                         ARGV[2]  status
ARGV[3]  reason ("" for none)              ARGV[4]  actor (moderator id or "admin")
ARGV[5]  now (ms)

The status the author already has, with the same reason, is not set again (a retry whose first
answer was lost, or a second moderator's same ban): no audit entry, and the reason, who set it
and when stay the first's. A status set anew ends the list of what the previous ban rejected.

Returns {previous status ("" when none was set), 1 when set or 0 when it already stood}; false
when the site was deleted (since the caller read its record: a status written behind its purge
would be a new site's of that id).
]]

if redis.call("EXISTS", KEYS[3]) == 0 then
  return false
end

local stored = redis.call("HMGET", KEYS[1], "status", "status_reason")
local previous = stored[1] or ""
if previous == ARGV[2] and (stored[2] or "") == ARGV[3] then
  return {previous, 0}
end
redis.call("HSET", KEYS[1], "status", ARGV[2], "status_reason", ARGV[3],
  "status_by", ARGV[4], "status_at", ARGV[5])
redis.call("XADD", KEYS[2], "MAXLEN", "~", AUDIT_MAXLEN, "*",
  "author_id", ARGV[1], "action", "author_status", "actor", ARGV[4],
  "from_state", previous, "to_state", ARGV[2], "reasons", ARGV[3] == "" and "[]" or cjson.encode({ARGV[3]}),
  "at", ARGV[5])
redis.call("DEL", KEYS[4])
return {previous, 1}
