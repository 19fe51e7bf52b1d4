--[[
Keep the answer of a request sent with an Idempotency-Key, for its retries.

KEYS[1]  the record hash            civ:{site}:idempotency:<digest>
KEYS[2..]  the erasure markers of the authors in ARGV[5]   civ:{site}:erasure:<author>

ARGV[1]  sha256 of the request body        ARGV[2]  HTTP status
ARGV[3]  the answer's body                 ARGV[4]  its content type
ARGV[5]  JSON list of the authors whose comments the answer carries ("" for none), kept
         unsealed in "authors" so that erasing one of them finds the answer (erase_answers.lua)

Returns 1, or 0 when the record is no longer this request's (expired, or taken by a retry with
another body after it expired): the answer is then not kept. Nor is it while one of its authors
is being erased: it may carry what the erasure removed after the erasure looked for it, so the
record goes (a retry runs again, on the erased comments).
]]

local record = redis.call("HMGET", KEYS[1], "body_hash", "state")
if record[1] ~= ARGV[1] or record[2] ~= "running" then
  return 0
end
for index = 2, #KEYS do
  if redis.call("EXISTS", KEYS[index]) == 1 then
    redis.call("DEL", KEYS[1])
    return 0
  end
end
redis.call("HSET", KEYS[1], "state", "done", "status", ARGV[2], "answer", ARGV[3],
  "content_type", ARGV[4])
redis.call("HDEL", KEYS[1], "running_until")
if ARGV[5] ~= "" then
  redis.call("HSET", KEYS[1], "authors", ARGV[5])
end
return 1
