--[[
Read what intake needs before it decides, in one call (read only): the stored comment, the
author's standing, the article's settings and the window keys.

KEYS[1]  comment hash               civ:{site}:comment:<id>
KEYS[2]  author hash                civ:{site}:author:<author>
KEYS[3]  article hash               civ:{site}:article:<article>
KEYS[4..] window keys (flood per author, per address, duplicate text)

ARGV[1]  sha256 of the submitted text

Returns {stored, approved, status, closed, premod, window values...} where `stored` is the whole
comment hash (a flat field/value list) when it already holds this very text (a redelivery), the
list {"article_id", <id>, "author_id", <id>} when it holds another text (an edit), or an empty
list for a new comment. Missing values are false.
]]

local stored = {}
local text_hash, article, author = unpack(redis.call("HMGET", KEYS[1], "text_hash", "article_id",
  "author_id"))
if text_hash == ARGV[1] then
  stored = redis.call("HGETALL", KEYS[1])
elseif text_hash then
  stored = {"article_id", article, "author_id", author}
end
local approved, status = unpack(redis.call("HMGET", KEYS[2], "approved", "status"))
local closed, premod = unpack(redis.call("HMGET", KEYS[3], "closed", "premod"))
local reply = {stored, approved, status, closed, premod}
for index = 4, #KEYS do
  reply[#reply + 1] = redis.call("GET", KEYS[index])
end
return reply
