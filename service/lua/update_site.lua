--[[
Change a site (a patch): set fields of its hash, which must already exist, so a write racing a
missing site never creates half a record; optionally only while one field still holds the value
the caller read, so two read-merge-write updates (a policy patch) cannot overwrite each other.
Coral's GraphQL URL and access token work only together: a write that gives or removes one of
them and would leave the site with one but not the other writes nothing.

KEYS[1]  the site hash              civ:{site}:site

ARGV[1]  the guarded field, or "" for none
ARGV[2]  the value it must still hold
ARGV[3..]: field, value, field, value, ... ("" removes a Coral setting)

Returns 1 when written, 0 when the hash does not exist, -1 when the guarded field has changed,
or the name of the Coral field the write would leave missing.
]]

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
if ARGV[1] ~= "" and redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then
  return -1
end
local pair = {coral_graphql_url = false, coral_access_token = false}
local touched = false
for i = 3, #ARGV, 2 do
  if pair[ARGV[i]] ~= nil then
    touched = true
  end
end
if touched then
  local stored = redis.call("HMGET", KEYS[1], "coral_graphql_url", "coral_access_token")
  pair.coral_graphql_url = stored[1] or ""
  pair.coral_access_token = stored[2] or ""
  for i = 3, #ARGV, 2 do
    if pair[ARGV[i]] ~= nil then
      pair[ARGV[i]] = ARGV[i + 1]
    end
  end
  if pair.coral_graphql_url == "" and pair.coral_access_token ~= "" then
    return "coral_graphql_url"
  end
  if pair.coral_graphql_url ~= "" and pair.coral_access_token == "" then
    return "coral_access_token"
  end
end
redis.call("HSET", KEYS[1], unpack(ARGV, 3))
return 1
