"""The hand-made Lua mutants of ``make mutate``: each script's tests, and its faults.

mutmut cannot read Lua, so each fault here (a flipped comparison, a dropped call, an altered
constant) is applied alone to a scratch copy of the project by ``bench/mutation.py`` and the tests
``LUA_TESTS`` names for its script run against it.
"""

from dataclasses import dataclass

# The tests that reach each script: the store's, plus the API suites whose behaviour
# (reports, retention, moderation) the decision script carries.
LUA_TESTS = {
    "claim.lua": (
        "tests/service/test_store.py",
        "tests/service/api/test_api_moderation.py",
        "tests/service/api/test_api_queue_items.py",
        "tests/service/api/test_api_revocation.py",
        "tests/service/api/test_api_idempotency.py",
        "tests/service/api/test_api_idempotency_outage.py",
    ),
    "claim_comment.lua": (
        "tests/service/api/test_api_queue_items.py",
        "tests/service/api/test_api_revocation.py",
    ),
    "decide.lua": (
        "tests/service/test_store.py",
        "tests/service/api/test_api_browse.py",
        "tests/service/api/test_api_moderation.py",
        "tests/service/api/test_api_queue_ages.py",
        "tests/service/api/test_api_reports.py",
        "tests/service/api/test_api_retention.py",
        "tests/service/api/test_api_idempotency.py",
        "tests/service/api/test_api_revocation.py",
        # A decision of Coral's moderators recorded after the call into Coral it came during.
        "tests/service/api/test_compat_coral_sync.py",
    ),
    **dict.fromkeys(
        ("revoke_moderator.lua", "delete_site.lua"),
        ("tests/service/api/test_api_revocation.py",),
    ),
    "rotate_api_key.lua": (
        "tests/service/test_admin_store.py",
        "tests/service/api/test_api_revocation.py",
    ),
    "erase_author.lua": (
        "tests/service/test_comment_layout.py",
        "tests/service/api/test_api_revocation.py",
    ),
    **dict.fromkeys(
        ("erase_windows.lua", "erase_answers.lua"), ("tests/service/api/test_api_revocation.py",)
    ),
    **dict.fromkeys(
        ("add_moderator.lua", "touch_moderator.lua"),
        ("tests/service/test_store.py", "tests/service/api/test_api_revocation.py"),
    ),
    "release.lua": ("tests/service/test_store.py", "tests/service/api/test_api_revocation.py"),
    "author_status.lua": (
        "tests/service/test_author_standing.py",
        "tests/service/api/test_api_authors.py",
        "tests/service/api/test_api_revocation.py",
    ),
    "rotate_secret.lua": ("tests/service/test_store.py", "tests/service/api/test_api_rotation.py"),
    # Its only mutants are in the grace list of the two rotations.
    "_lib.lua": (
        "tests/service/test_store.py",
        "tests/service/test_admin_store.py",
        "tests/service/api/test_api_rotation.py",
        "tests/service/api/test_api_revocation.py",
    ),
    "report.lua": (
        "tests/service/test_store.py",
        "tests/service/api/test_api_queue_ages.py",
        "tests/service/api/test_api_reports.py",
        "tests/service/api/test_api_revocation.py",
    ),
    "ingest.lua": (
        "tests/service/test_store.py",
        "tests/service/test_intake_verdicts.py",
        "tests/service/api/test_api_queue_ages.py",
    ),
    **dict.fromkeys(
        ("second_look_claim.lua", "second_look_fail.lua", "second_look_hand_back.lua"),
        ("tests/service/worker/test_second_look.py",),
    ),
    # A retry's due time, and a last attempt made again, after a wait for Coral's ids that a
    # webhook brought during the attempt.
    "delivery_settle.lua": (
        "tests/service/worker/test_worker_ordering.py",
        "tests/service/api/test_compat_coral_sync.py",
    ),
    "delivery_redeliver.lua": ("tests/service/worker/test_worker_ordering.py",),
    "reindex.lua": ("tests/service/api/test_api_reindex.py",),
    "coral_link.lua": (
        "tests/service/api/test_compat_coral_sync.py",
        "tests/service/api/test_compat_coral.py",
    ),
    # A decision into Coral that a later one replaced: not sent, and its call no longer noted.
    "coral_current.lua": ("tests/service/api/test_compat_coral_sync.py",),
    # A call into Coral ended: no longer in flight, and a decision of Coral's made during it
    # carried back into Coral.
    "coral_answered.lua": ("tests/service/api/test_compat_coral_sync.py",),
    "second_look_apply.lua": (
        "tests/service/worker/test_second_look.py",
        "tests/service/api/test_api_second_look.py",
    ),
    **dict.fromkeys(
        ("idempotency_begin.lua", "idempotency_finish.lua", "idempotency_release.lua"),
        (
            "tests/service/test_idempotency_store.py",
            "tests/service/api/test_api_idempotency.py",
            "tests/service/api/test_api_idempotency_outage.py",
        ),
    ),
}


@dataclass(frozen=True)
class LuaMutant:
    script: str
    original: str
    mutated: str
    equivalent: str | None = None
    """Why no test can tell this mutant from the original, when that is so."""


LUA_MUTANTS = (
    LuaMutant("claim.lua", "while #claimed < wanted do", "while #claimed <= wanted do"),
    LuaMutant("claim.lua", "KEYS[2], now + lease_ms, id)", "KEYS[2], now, id)"),
    LuaMutant("claim.lua", 'redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now)\n', ""),
    LuaMutant("claim.lua", 'moderator, "NX", "PX", lease_ms)', 'moderator, "PX", lease_ms)'),
    LuaMutant("claim.lua", "      if #claimed == wanted then\n        break\n      end\n", ""),
    LuaMutant(
        "claim.lua", 'local descending = ARGV[6] == "1"', 'local descending = ARGV[6] ~= "1"'
    ),
    LuaMutant("claim.lua", "return claimed", "return {}"),
    LuaMutant("claim.lua", 'if redis.call("EXISTS", prefix .. "site") == 0 then', "if false then"),
    LuaMutant(
        "claim_comment.lua", 'if redis.call("EXISTS", prefix .. "site") == 0 then', "if false then"
    ),
    LuaMutant("claim.lua", "if revoked(prefix, moderator) then", "if false then"),
    LuaMutant("claim.lua", 'local made = ARGV[7] ~= "" and', 'local made = ARGV[7] == "" and'),
    LuaMutant("claim.lua", "if kept then", "if false then"),
    LuaMutant("claim.lua", 'if redis.call("GET", lease) == moderator then', "if true then"),
    LuaMutant("claim.lua", 'redis.call("PTTL", lease)}', "0}"),
    LuaMutant("claim.lua", "return held", "return {}"),
    LuaMutant(
        "claim.lua", "comment_fields(prefix, id), lease_ms}", "comment_fields(prefix, id), 0}"
    ),
    LuaMutant("claim.lua", "      ids_leased[#ids_leased + 1] = id\n", ""),
    LuaMutant(
        "claim.lua", 'redis.call("SET", made, cjson.encode(ids_leased), "PX", ARGV[8])\n', ""
    ),
    LuaMutant("claim.lua", '"PX", ARGV[8])', '"PX", 60000)'),
    # An article and an author together: only comments both indexes hold are claimed.
    LuaMutant(
        "claim.lua",
        'local in_both = not other or redis.call("ZSCORE", other, id)',
        "local in_both = true",
    ),
    LuaMutant(
        "claim.lua",
        'if other and redis.call("ZCARD", other) < redis.call("ZCARD", walked) then',
        "if false then",
        equivalent="both indexes are of one queue, order and reason, scored alike: walking the "
        "larger one finds the same comments in the same order, at more cost",
    ),
    LuaMutant("claim.lua", '      redis.call("ZADD", KEYS[2], now + lease_ms, id)\n', ""),
    LuaMutant(
        "claim.lua",
        '      record_lease(KEYS[3], id, "claim", moderator, now, now + lease_ms)\n',
        "",
    ),
    LuaMutant("claim.lua", "keep_claims(KEYS[2], now)\n", ""),
    LuaMutant("claim_comment.lua", "if revoked(prefix, moderator) then", "if false then"),
    LuaMutant(
        "release.lua", 'if redis.call("EXISTS", prefix .. "site") == 0 then', "if false then"
    ),
    LuaMutant(
        "claim.lua",
        "local batch = 100",
        "local batch = 1",
        equivalent="the page size changes how many ids one ZRANGE reads, not which are claimed",
    ),
    LuaMutant(
        "claim.lua",
        "offset = offset + batch",
        "offset = offset + batch - 1",
        equivalent="re-reading the last id of a page tries a lease this call already holds; "
        "SET NX refuses it, so the same ids are claimed",
    ),
    LuaMutant("decide.lua", "if stored[6] == ARGV[11] or (", "if false or ("),
    LuaMutant(
        "decide.lua",
        'or (remember_ms > 0 and redis.call("EXISTS", decided) == 1) then',
        "then",
    ),
    LuaMutant(
        "decide.lua", 'then\n  redis.call("SET", decided, id, "PX", remember_ms)\n', "then\n"
    ),
    LuaMutant("decide.lua", '    redis.call("SET", decided, id, "PX", remember_ms)\n', ""),
    LuaMutant(
        "decide.lua",
        'if ARGV[7] ~= "" and ARGV[7] ~= stored[2] then',
        'if ARGV[7] ~= "" and ARGV[7] == stored[2] then',
    ),
    LuaMutant(
        "decide.lua", "if holder and holder ~= actor then", "if holder and holder == actor then"
    ),
    LuaMutant("decide.lua", "if not listed(ARGV[13], previous) then", "if false then"),
    LuaMutant(
        "decide.lua",
        'redis.call("HINCRBY", KEYS[1], "version", 1)',
        'redis.call("HINCRBY", KEYS[1], "version", 2)',
    ),
    LuaMutant("decide.lua", 'dequeue(prefix, "pending", id, article, author, stored[9])\n', ""),
    LuaMutant("decide.lua", 'dequeue(prefix, "reported", id, article, author, stored[9])\n', ""),
    LuaMutant("decide.lua", 'redis.call("DEL", prefix .. "reports:" .. id)\n', ""),
    LuaMutant("decide.lua", 'redis.call("DEL", KEYS[5])\n', ""),
    LuaMutant("decide.lua", 'redis.call("ZREM", KEYS[8], id)\n', ""),
    LuaMutant(
        "decide.lua",
        'count_author(prefix .. "author:" .. author, previous, target, now, false)',
        'count_author(prefix .. "author:" .. author, target, previous, now, false)',
    ),
    LuaMutant("decide.lua", 'count_decision(KEYS[6], KEYS[7], "moderator", target)\n', ""),
    LuaMutant(
        "decide.lua", 'retain(prefix, id, target == "pending" and 0 or tonumber(ARGV[14]))\n', ""
    ),
    LuaMutant("decide.lua", 'if target == "approved" then', 'if target == "rejected" then'),
    LuaMutant(
        "decide.lua",
        'if ARGV[7] == "" and previous == target and stored[8] == actor',
        'if ARGV[7] == "" and previous ~= target and stored[8] == actor',
    ),
    # A decision of Coral's moderators read during civility's call into Coral and recorded once
    # it ended: noted in the same step to be carried back into Coral.
    LuaMutant("decide.lua", 'if ARGV[17] ~= "" then', "if false then"),
    LuaMutant(
        "decide.lua",
        'redis.call("HGET", link, "in_flight") ~= ARGV[17]',
        'redis.call("HGET", link, "in_flight") == ARGV[17]',
    ),
    LuaMutant("decide.lua", "      and coral_status[target] ~= ARGV[18] then", "      then"),
    LuaMutant(
        "decide.lua",
        'and redis.call("EXISTS", link) == 1\n',
        "\n",
    ),
    LuaMutant("decide.lua", '    redis.call("HSET", link, "resend_version", version)\n', ""),
    # Revocation: a revoked or deleted credential must fail at once and leave nothing behind.
    LuaMutant("revoke_moderator.lua", "if not stored then", "if stored then"),
    LuaMutant("revoke_moderator.lua", 'redis.call("HDEL", KEYS[1], ARGV[1])\n', ""),
    LuaMutant("revoke_moderator.lua", 'redis.call("HDEL", KEYS[2], ARGV[1])\n', ""),
    LuaMutant("revoke_moderator.lua", "return stored", "return false"),
    LuaMutant("revoke_moderator.lua", "return stored", 'return "{}"'),
    LuaMutant("rotate_api_key.lua", "if not current then", "if current then"),
    LuaMutant(
        "rotate_api_key.lua",
        '"previous_api_key_hash", current,',
        '"previous_api_key_hash", ARGV[1],',
    ),
    LuaMutant(
        "rotate_api_key.lua",
        '"previous_api_key_valid_until", ARGV[3],',
        '"previous_api_key_valid_until", ARGV[2],',
    ),
    LuaMutant("rotate_api_key.lua", '"updated_at", ARGV[2])', '"updated_at", ARGV[3])'),
    LuaMutant(
        "rotate_api_key.lua",
        "tonumber(ARGV[2]), tonumber(ARGV[3]),",
        "tonumber(ARGV[2]), tonumber(ARGV[2]),",
    ),
    LuaMutant("rotate_api_key.lua", "tonumber(ARGV[4]))", "tonumber(ARGV[4]) + 1)"),
    LuaMutant("rotate_api_key.lua", "local reply = {current}", "local reply = {ARGV[1]}"),
    LuaMutant("rotate_api_key.lua", "  reply[#reply + 1] = hash\n", ""),
    LuaMutant("delete_site.lua", "if not keys[1] then", "if keys[1] then"),
    LuaMutant("delete_site.lua", 'if keys[2] and keys[2] ~= "" then', "if false then"),
    LuaMutant("delete_site.lua", 'if keys[3] and keys[3] ~= "" then', "if false then"),
    LuaMutant("delete_site.lua", 'reply[#reply + 1] = ""\n', ""),
    LuaMutant("delete_site.lua", 'reply[#reply + 1] = keys[4] or ""', 'reply[#reply + 1] = ""'),
    LuaMutant(
        "delete_site.lua",
        'ipairs(redis.call("HVALS", KEYS[2]))',
        "ipairs({})",
    ),
    LuaMutant(
        "delete_site.lua", 'redis.call("DEL", KEYS[1], KEYS[2])', 'redis.call("DEL", KEYS[2])'
    ),
    LuaMutant(
        "delete_site.lua", 'redis.call("DEL", KEYS[1], KEYS[2])', 'redis.call("DEL", KEYS[1])'
    ),
    LuaMutant("erase_author.lua", "if stored[1] == ARGV[1] then", "if stored[1] ~= ARGV[1] then"),
    LuaMutant(
        "erase_author.lua",
        "if kept.note ~= nil and kept.note ~= cjson.null then",
        "if false then",
    ),
    LuaMutant("erase_author.lua", '"evidence", "{}", ', ""),
    LuaMutant("erase_author.lua", '"text_hash", "",', ""),
    LuaMutant(
        "erase_author.lua",
        'if not redis.call("SET", site_prefix .. "text:" .. stored[2], "", "KEEPTTL", "XX") then',
        "if true then",
    ),
    LuaMutant("erase_author.lua", '      redis.call("HSET", key, "text", "")\n', ""),
    LuaMutant(
        "erase_author.lua",
        'redis.call("LSET", history, index - 1, string.sub(entry, 1, at - 1) .. "}")',
        'redis.call("LSET", history, index - 1, entry)',
    ),
    LuaMutant("erase_author.lua", "erased[#erased + 1] = stored[2]", "erased[#erased + 1] = key"),
    LuaMutant(
        "erase_author.lua",
        '    keep_anonymous(site_prefix .. "reports:" .. stored[2], ARGV[1])\n',
        "",
    ),
    LuaMutant("erase_author.lua", '  redis.call("HDEL", reports, author)\n', ""),
    LuaMutant("erase_windows.lua", "if owner == author then", "if owner ~= author then"),
    LuaMutant("erase_windows.lua", "#duplicates + 66", "#duplicates + 65"),
    LuaMutant("erase_windows.lua", '"HGET", prefix .. "comment:" .. holder', '"HGET", holder'),
    LuaMutant("erase_answers.lua", "if author == ARGV[1] then", "if author ~= ARGV[1] then"),
    LuaMutant("erase_answers.lua", '        redis.call("DEL", key)\n', ""),
    LuaMutant("author_status.lua", 'if redis.call("EXISTS", KEYS[3]) == 0 then', "if false then"),
    LuaMutant("add_moderator.lua", 'if redis.call("EXISTS", KEYS[1]) == 0 then', "if false then"),
    LuaMutant("add_moderator.lua", 'redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])\n', ""),
    LuaMutant("add_moderator.lua", "  return 0", "  return 1"),
    LuaMutant(
        "touch_moderator.lua",
        'if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then',
        "if false then",
    ),
    LuaMutant("touch_moderator.lua", 'redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])\n', ""),
    LuaMutant("touch_moderator.lua", "  return 0", "  return 1"),
    # Idempotency: a retry gets the first answer, never another request's, and never acts twice.
    LuaMutant(
        "idempotency_begin.lua",
        "if record[1] and tonumber(record[6]) > now then",
        "if record[1] and tonumber(record[6]) >= now then",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        "if record[1] and tonumber(record[6]) > now then",
        "if false then",
    ),
    LuaMutant("idempotency_begin.lua", "if record[1] ~= ARGV[1] then", "if false then"),
    LuaMutant("idempotency_begin.lua", 'if record[2] == "done" then', "if false then"),
    LuaMutant(
        "idempotency_begin.lua",
        "if tonumber(record[7]) > now then",
        "if tonumber(record[7]) >= now then",
    ),
    LuaMutant("idempotency_begin.lua", "if tonumber(record[7]) > now then", "if false then"),
    LuaMutant("idempotency_begin.lua", "  expires_at = tonumber(record[6])\n", ""),
    LuaMutant(
        "idempotency_begin.lua",
        'redis.call("DEL", KEYS[1])\n',
        "",
        equivalent="what the HSET after it leaves of an expired record (status, answer, content "
        "type) is read only in state done, and finish writes all three when it sets done",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        '"running_until", string.format("%d", now + tonumber(ARGV[3])))',
        '"running_until", string.format("%d", now))',
    ),
    LuaMutant(
        "idempotency_begin.lua",
        'redis.call("PEXPIRE", KEYS[1], math.max(1, expires_at - now))\n',
        "",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        "local expires_at = now + tonumber(ARGV[4])",
        "local expires_at = now + tonumber(ARGV[3])",
    ),
    LuaMutant("idempotency_begin.lua", 'return {"started"}', 'return {"running"}'),
    LuaMutant(
        "idempotency_finish.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        "if record[1] ~= ARGV[1] then",
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        'if record[2] ~= "running" then',
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'redis.call("HSET", KEYS[1], "state", "done",',
        'redis.call("HSET", KEYS[1], "state", "running",',
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'redis.call("HDEL", KEYS[1], "running_until")\n',
        "",
        equivalent="running_until is read only while the state is running, and this sets done",
    ),
    LuaMutant(
        "idempotency_finish.lua",
        '  redis.call("HSET", KEYS[1], "authors", ARGV[5])\n',
        "",
    ),
    LuaMutant("idempotency_finish.lua", "return 1", "return 0"),
    LuaMutant(
        "idempotency_release.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        "if record[1] ~= ARGV[1] then",
    ),
    LuaMutant(
        "idempotency_release.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        'if record[2] ~= "running" then',
    ),
    LuaMutant("idempotency_release.lua", 'return redis.call("DEL", KEYS[1])', "return 1"),
    # Leases, webhook secrets and reports: only the holder releases, a secret's grace is kept and
    # bounded, a reader counts once and the threshold queues a comment once.
    LuaMutant("release.lua", "if #ARGV > 3 then", "if #ARGV > 4 then"),
    LuaMutant("release.lua", "for index = 4, #ARGV do", "for index = 5, #ARGV do"),
    LuaMutant("release.lua", 'ids = redis.call("ZRANGE", KEYS[1], 0, -1)', "ids = {}"),
    LuaMutant("release.lua", 'if redis.call("GET", lease) == moderator then', "if true then"),
    LuaMutant("release.lua", '    redis.call("DEL", lease)\n', ""),
    LuaMutant(
        "release.lua", '    record_lease(KEYS[2], id, "release", moderator, ARGV[3], ARGV[3])\n', ""
    ),
    LuaMutant("release.lua", "released[#released + 1] = id", "released[#released + 1] = nil"),
    LuaMutant("release.lua", '  redis.call("ZREM", KEYS[1], id)\n', ""),
    LuaMutant("rotate_secret.lua", "if not current then", "if current then"),
    LuaMutant(
        "rotate_secret.lua",
        "tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))",
        "tonumber(ARGV[2]), tonumber(ARGV[2]), tonumber(ARGV[4]))",
    ),
    LuaMutant("rotate_secret.lua", "tonumber(ARGV[4]))", "tonumber(ARGV[4]) + 1)"),
    # The grace list both rotations keep.
    LuaMutant("_lib.lua", "if tonumber(entry[2]) > now then", "if tonumber(entry[2]) >= now then"),
    LuaMutant("_lib.lua", "if tonumber(entry[2]) > now then", "if true then"),
    LuaMutant("_lib.lua", 'elseif stored[2] and stored[2] ~= "" then', "elseif false then"),
    LuaMutant(
        "_lib.lua",
        "fresh[#fresh + 1] = {current, until_ms}",
        "fresh[#fresh + 1] = {current, now}",
    ),
    LuaMutant("_lib.lua", "while #fresh > most do", "while #fresh > most + 1 do"),
    LuaMutant("_lib.lua", "table.remove(fresh, 1)", "table.remove(fresh)"),
    LuaMutant("rotate_secret.lua", '"previous_secret", current,', '"previous_secret", ARGV[1],'),
    LuaMutant("rotate_secret.lua", '"updated_at", ARGV[2])', '"updated_at", ARGV[3])'),
    LuaMutant("report.lua", "if erasing ~= -2 then", "if false then"),
    LuaMutant("report.lua", "if not state then", "if false then"),
    LuaMutant(
        "report.lua",
        'if redis.call("HEXISTS", KEYS[2], reporter) == 1 then',
        'if redis.call("HEXISTS", KEYS[2], reporter) == 2 then',
    ),
    LuaMutant("report.lua", "if not listed(ARGV[10], state) then", "if false then"),
    LuaMutant(
        "report.lua",
        "if queued == 0 and count >= threshold then",
        "if queued == 0 and count > threshold then",
    ),
    LuaMutant(
        "report.lua", "if queued == 0 and count >= threshold then", "if count >= threshold then"
    ),
    LuaMutant("report.lua", '  reasons[#reasons + 1] = "REPORTED"\n', ""),
    LuaMutant("report.lua", 'redis.call("HSET", KEYS[1], "reports", count)\n', ""),
    LuaMutant(
        "report.lua",
        'local version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'local version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant("report.lua", "  retain(prefix, id, 0)\n", ""),
    LuaMutant("report.lua", '    redis.call("PEXPIRE", KEYS[2], ttl)\n', ""),
    # Intake and the second look: a verdict is stored only for the context it was decided for, a
    # redelivery changes nothing, and a look moves only a published, unedited, model-decided text.
    LuaMutant(
        "ingest.lua",
        "if stored[3] ~= article or stored[4] ~= author or reparented then",
        "if stored[3] ~= article or reparented then",
    ),
    LuaMutant(
        "ingest.lua",
        "if stored[3] ~= article or stored[4] ~= author or reparented then",
        "if stored[4] ~= author or reparented then",
    ),
    LuaMutant(
        "ingest.lua",
        "if stored[2] == text_hash or stored[7] or superseded then",
        "if stored[7] or superseded then",
    ),
    LuaMutant(
        "ingest.lua",
        "tonumber(ARGV[32]) <= tonumber(stored[9])",
        "tonumber(ARGV[32]) < tonumber(stored[9])",
    ),
    LuaMutant("ingest.lua", '(ARGV[32] == "" or tonumber', '(ARGV[32] ~= "" and tonumber'),
    LuaMutant(
        "ingest.lua",
        'tonumber(approved or "0") >= tonumber(ARGV[23])',
        'tonumber(approved or "0") > tonumber(ARGV[23])',
    ),
    LuaMutant("ingest.lua", 'closed == "1" and "1" or "0"', '"0"'),
    LuaMutant("ingest.lua", 'premod == "1" and "1" or "0"', '"0"'),
    LuaMutant(
        "ingest.lua",
        'observed[#observed + 1] = (holder and holder ~= id) and "1" or "0"',
        'observed[#observed + 1] = holder and "1" or "0"',
    ),
    LuaMutant("ingest.lua", "if signature ~= ARGV[22] then", "if false then"),
    LuaMutant("ingest.lua", "if not listed(ARGV[21], previous) then", "if false then"),
    LuaMutant(
        "ingest.lua",
        'version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant(
        "ingest.lua",
        '  if previous == "pending" then\n    queued_at',
        "  if false then\n    queued_at",
    ),
    LuaMutant("ingest.lua", '  dequeue(prefix, "pending", id, article, author, stored[5])\n', ""),
    LuaMutant("ingest.lua", '  dequeue(prefix, "reported", id, article, author, stored[5])\n', ""),
    LuaMutant("ingest.lua", '  redis.call("DEL", prefix .. "reports:" .. id)\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], "reports")\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], unpack(stale))\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], "evidence")\n', ""),
    LuaMutant("ingest.lua", '  redis.call("DEL", KEYS[9])\n', ""),
    LuaMutant(
        "ingest.lua",
        'if ttl > 0 and (when == "a" or not previous) then',
        "if ttl > 0 then",
    ),
    LuaMutant(
        "ingest.lua",
        'local looked_at = state == "approved" and ARGV[29] == "1"',
        'local looked_at = state == "approved"',
    ),
    LuaMutant("ingest.lua", 'retain(prefix, id, state == "pending" and 0 or retention_ms)\n', ""),
    LuaMutant(
        "second_look_claim.lua",
        'if redis.call("EXISTS", prefix .. "site") == 0 then',
        "if false then",
    ),
    LuaMutant(
        "second_look_fail.lua", 'if redis.call("EXISTS", KEYS[4]) == 0 then', "if false then"
    ),
    LuaMutant(
        "delivery_settle.lua",
        'if redis.call("EXISTS", prefix .. "site") == 0 then',
        "if false then",
    ),
    # A retry whose attempt waited for Coral's ids is due at once when a webhook changed either
    # since the attempt read them, and only then.
    LuaMutant("delivery_settle.lua", "    came = true\n", ""),
    LuaMutant("delivery_settle.lua", "local at = came and now or ARGV[6]", "local at = ARGV[6]"),
    LuaMutant("delivery_settle.lua", "local at = came and now or ARGV[6]", "local at = now"),
    LuaMutant("delivery_settle.lua", '"next_attempt_at", at)', '"next_attempt_at", ARGV[6])'),
    LuaMutant(
        "delivery_settle.lua",
        '"ZADD", KEYS[1], at, event_id)',
        '"ZADD", KEYS[1], ARGV[6], event_id)',
    ),
    LuaMutant("delivery_settle.lua", "~= ARGV[index + 1] then", "== ARGV[index + 1] then"),
    LuaMutant("delivery_settle.lua", 'ARGV[index]) or "") ~=', "ARGV[index])) ~="),
    LuaMutant(
        "delivery_settle.lua", "for index = 12, read_end, 2 do", "for index = 14, read_end, 2 do"
    ),
    LuaMutant(
        "delivery_settle.lua",
        "for index = 12, read_end, 2 do",
        "for index = 12, read_end - 2, 2 do",
    ),
    LuaMutant(
        "delivery_settle.lua",
        "local read_end = 11 + 2 * tonumber(ARGV[11])",
        "local read_end = 11 + tonumber(ARGV[11])",
    ),
    LuaMutant(
        "delivery_settle.lua",
        "    break\n",
        "",
        equivalent="a later field that differs too sets the same time again",
    ),
    # The last attempt, failed, whose wait ended during it: made again at once and not counted,
    # instead of dead-lettered; and only then.
    LuaMutant("delivery_settle.lua", 'if outcome == "failed" and came then', "if false then"),
    LuaMutant(
        "delivery_settle.lua", 'if outcome == "failed" and came then', 'if outcome == "failed" then'
    ),
    LuaMutant(
        "delivery_settle.lua",
        '  redis.call("HINCRBY", KEYS[5], "attempts", -1)\n'
        '  redis.call("HSET", KEYS[5], "next_attempt_at", now)\n',
        '  redis.call("HSET", KEYS[5], "next_attempt_at", now)\n',
    ),
    LuaMutant(
        "delivery_settle.lua",
        '  redis.call("HSET", KEYS[5], "next_attempt_at", now)\n'
        '  redis.call("ZADD", KEYS[1], now, event_id)\n  return "retry"',
        '  redis.call("ZADD", KEYS[1], now, event_id)\n  return "retry"',
    ),
    LuaMutant(
        "delivery_settle.lua",
        '  redis.call("ZADD", KEYS[1], now, event_id)\n  return "retry"',
        '  return "retry"',
    ),
    LuaMutant("delivery_settle.lua", 'return "retry"', 'return "ok"'),
    # A dead letter of a decision that waited says in the same step that it was given up, unless
    # the link is gone.
    LuaMutant(
        "delivery_settle.lua",
        '    redis.call("HSET", KEYS[7], unpack(ARGV, read_end + 1))\n',
        "",
    ),
    LuaMutant("delivery_settle.lua", "unpack(ARGV, read_end + 1)", "unpack(ARGV, read_end + 3)"),
    LuaMutant(
        "delivery_settle.lua",
        'if #ARGV > read_end and redis.call("EXISTS", KEYS[7]) == 1 then',
        "if #ARGV > read_end then",
    ),
    LuaMutant(
        "delivery_settle.lua",
        'if #ARGV > read_end and redis.call("EXISTS", KEYS[7]) == 1 then',
        'if #ARGV >= read_end and redis.call("EXISTS", KEYS[7]) == 1 then',
    ),
    LuaMutant(
        "delivery_redeliver.lua",
        'if redis.call("EXISTS", prefix .. "site") == 0 then',
        "if false then",
    ),
    LuaMutant(
        "reindex.lua", 'if redis.call("EXISTS", prefix .. "site") == 0 then', "if false then"
    ),
    LuaMutant(
        "second_look_hand_back.lua",
        'if tonumber(redis.call("ZSCORE", KEYS[1], id)) == lease_until then',
        "if true then",
    ),
    LuaMutant(
        "second_look_hand_back.lua",
        'redis.call("ZADD", KEYS[1], "XX", ARGV[index + 1], id)\n',
        "",
    ),
    LuaMutant("second_look_hand_back.lua", '"XX", ARGV[index + 1]', '"XX", ARGV[1]'),
    LuaMutant(
        "second_look_hand_back.lua",
        '"ZADD", KEYS[1], "XX",',
        '"ZADD", KEYS[1],',
        equivalent="a comment is handed back only while the queue holds it under the lease, so "
        "ZADD always updates one already there",
    ),
    LuaMutant("second_look_apply.lua", "if not state then", "if false then"),
    LuaMutant("second_look_apply.lua", "if stored[3] ~= ARGV[4] then", "if false then"),
    LuaMutant(
        "second_look_apply.lua",
        'local by_model = stored[2] and string.sub(stored[2], 1, 5) == "auto:"',
        "local by_model = true",
    ),
    LuaMutant(
        "second_look_apply.lua",
        "if not by_model or not listed(ARGV[12], state) then",
        "if not by_model then",
    ),
    LuaMutant(
        "second_look_apply.lua",
        "if not by_model or not listed(ARGV[12], state) then",
        "if not listed(ARGV[12], state) then",
    ),
    LuaMutant(
        "second_look_apply.lua",
        '"auto:"\nredis.call("ZREM", KEYS[5], id)\n',
        '"auto:"\n',
    ),
    LuaMutant(
        "second_look_apply.lua", 'redis.call("HSET", KEYS[1], "look_state", "skipped")\n', ""
    ),
    LuaMutant("second_look_apply.lua", 'if ARGV[8] ~= "1" then', 'if ARGV[8] == "1" then'),
    LuaMutant(
        "second_look_apply.lua",
        'local version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'local version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant("second_look_apply.lua", "keep_creation(KEYS[1], KEYS[2])\n", ""),
    LuaMutant(
        "second_look_apply.lua", 'dequeue(prefix, "reported", id, article, author, stored[6])\n', ""
    ),
    LuaMutant(
        "second_look_apply.lua",
        'enqueue(prefix, "pending", id, article, author, ARGV[13], now, ARGV[9])\n',
        "",
    ),
    LuaMutant(
        "second_look_apply.lua",
        'count_author(prefix .. "author:" .. author, state, "pending", now, false)\n',
        "",
    ),
    LuaMutant(
        "second_look_apply.lua",
        'remember_decision(prefix, author, id, "pending", now, tonumber(ARGV[14]))\n',
        "",
    ),
    LuaMutant("second_look_apply.lua", 'redis.call("HINCRBY", KEYS[6], "held", 1)\n', ""),
    LuaMutant("second_look_apply.lua", "retain(prefix, id, 0)\n", ""),
    # A decision into Coral goes only while it is the comment's latest, reopens aside, and the
    # status its call sets is noted in the same step.
    LuaMutant(
        "coral_current.lua",
        "if tonumber(entry.version) <= version then",
        "if tonumber(entry.version) < version then",
    ),
    LuaMutant("coral_current.lua", "    break\n", ""),
    LuaMutant(
        "coral_current.lua",
        'local index = redis.call("LLEN", KEYS[3]) - 1',
        'local index = redis.call("LLEN", KEYS[3]) - 2',
    ),
    LuaMutant("coral_current.lua", "if sets[entry.action] then", "if true then"),
    LuaMutant("coral_current.lua", "if sets[entry.action] then", "if false then"),
    LuaMutant("coral_current.lua", '{approve = "APPROVED", reject', "{reject"),
    LuaMutant("coral_current.lua", 'reject = "REJECTED", spam', "spam"),
    LuaMutant("coral_current.lua", ', spam = "REJECTED"}', "}"),
    # A call cut short before its end was noted: Coral's decision that replaced it goes back.
    LuaMutant("coral_current.lua", "if noted[1] == ARGV[3] and entry.actor", "if entry.actor"),
    LuaMutant(
        "coral_current.lua",
        '        redis.call("HSET", KEYS[2], "resend_version", entry.version)\n',
        "",
    ),
    LuaMutant(
        "coral_current.lua",
        '      redis.call("HSET", KEYS[2], "calling_status", "", "in_flight", "")\n',
        "",
    ),
    LuaMutant("coral_current.lua", "    return 0\n", ""),
    LuaMutant(
        "coral_current.lua",
        '  redis.call("HSET", KEYS[2], "calling_status", ARGV[2], "in_flight", ARGV[3])\n',
        "",
    ),
    LuaMutant(
        "coral_current.lua",
        '"calling_status", ARGV[2], "in_flight", ARGV[3])',
        '"calling_status", ARGV[2])',
    ),
    # Once a call into Coral ends, it is no longer in flight, and the latest decision made since,
    # when Coral's moderators' and unlike the call's, is noted to be carried back, until done.
    LuaMutant(
        "coral_answered.lua",
        'local index = redis.call("LLEN", KEYS[3]) - 1',
        'local index = redis.call("LLEN", KEYS[3]) - 2',
    ),
    LuaMutant("coral_answered.lua", "  if sets[entry.action] then", "  if false then"),
    LuaMutant("coral_answered.lua", 'reject = "REJECTED", spam', 'reject = "APPROVED", spam'),
    LuaMutant("coral_answered.lua", "      later = tonumber(entry.version)\n", ""),
    LuaMutant("coral_answered.lua", 'redis.call("HSET", KEYS[2], "in_flight", "")\n', ""),
    LuaMutant("coral_answered.lua", '  redis.call("HSET", KEYS[2], unpack(ARGV, 5))\n', ""),
    LuaMutant(
        "coral_answered.lua",
        '  redis.call("HSET", KEYS[2], "resend_version", later)\n',
        "",
    ),
    LuaMutant(
        "coral_answered.lua",
        'elseif ARGV[4] == "1" and redis.call',
        "elseif false and redis.call",
    ),
    # Coral's links: none for a deleted site, kept as long as their comment, the thread's
    # comments by first sight for a day, and a decision waiting for Coral's ids due once a
    # webhook changes them, unless it is being attempted or already due.
    LuaMutant("coral_link.lua", 'if redis.call("EXISTS", KEYS[1]) == 0 then', "if false then"),
    LuaMutant("coral_link.lua", "if kept == -1 then", "if false then"),
    LuaMutant("coral_link.lua", '  redis.call("PERSIST", KEYS[2])\n', ""),
    LuaMutant("coral_link.lua", "kept > 0 and kept or ARGV[1]", "ARGV[1]"),
    LuaMutant("coral_link.lua", "kept > 0 and kept or ARGV[1]", "kept"),
    LuaMutant("coral_link.lua", '"ZADD", KEYS[4], "NX", now,', '"ZADD", KEYS[4], now,'),
    LuaMutant(
        "coral_link.lua",
        '  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", "(" .. (tonumber(now) - '
        "tonumber(ARGV[3])))\n",
        "",
    ),
    LuaMutant("coral_link.lua", '  redis.call("PEXPIRE", KEYS[4], ARGV[3])\n', ""),
    LuaMutant(
        "coral_link.lua",
        "if head and (after[1] ~= before[1] or after[2] ~= before[2]) then",
        "if head then",
    ),
    LuaMutant(
        "coral_link.lua",
        "if head and (after[1] ~= before[1] or after[2] ~= before[2]) then",
        "if head and after[1] ~= before[1] then",
    ),
    LuaMutant(
        "coral_link.lua",
        "if head and (after[1] ~= before[1] or after[2] ~= before[2]) then",
        "if head and after[2] ~= before[2] then",
    ),
    LuaMutant(
        "coral_link.lua",
        "if head and (after[1] ~= before[1] or after[2] ~= before[2]) then",
        "if after[1] ~= before[1] or after[2] ~= before[2] then",
    ),
    LuaMutant(
        "coral_link.lua",
        'if stored[1] == "pending" and',
        "if",
        equivalent="only a pending delivery is in the due set once its lease is cleared: the "
        "script that delivers or fails one takes it out of the set as it clears the lease",
    ),
    LuaMutant("coral_link.lua", 'and stored[2] == "" and', "and"),
    LuaMutant(
        "coral_link.lua",
        "and due and tonumber(due) > tonumber(now) then",
        "and due and tonumber(due) >= tonumber(now) then",
        equivalent="a delivery due exactly now is made due now: the same score, and the same "
        "next_attempt_at, which every script sets with the score of a delivery not leased",
    ),
    LuaMutant("coral_link.lua", "and due and tonumber(due) > tonumber(now) then", "and due then"),
    LuaMutant("coral_link.lua", '      redis.call("HSET", record, "next_attempt_at", now)\n', ""),
    LuaMutant("coral_link.lua", '      redis.call("ZADD", KEYS[5], "XX", now, head)\n', ""),
    LuaMutant(
        "coral_link.lua",
        '"ZADD", KEYS[5], "XX", now, head)',
        '"ZADD", KEYS[5], now, head)',
        equivalent="it is reached only when ZSCORE found the delivery in the due set, so ZADD "
        "always updates one already there",
    ),
)
