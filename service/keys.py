"""Every Redis key civility uses, built in this one module.

All keys of a site live under the hash tag ``{<site>}`` (``civ:{news}:comment:42``), so a script
touching them stays in one hash slot and runs unchanged on Redis Cluster. The few global indexes
(site list, api-key and token lookups) are single keys outside any site's tag and are never
touched by a script together with a site's keys.

Variable parts (comment, article, author ids) always come last in a key, each kind in its own
namespace, so an id containing ``:`` can never name another key. The Lua scripts derive the
per-article and per-author queue indexes from the site prefix the same way ``queue_index`` does
(the store test pins that both agree).
"""

from dataclasses import dataclass

from service.domain import Order, Queue, State

DEFAULT_PREFIX = "civ"
"""What every key starts with unless ``CIVILITY_REDIS_PREFIX`` says otherwise."""


@dataclass(frozen=True, slots=True)
class KeySpace:
    prefix: str = DEFAULT_PREFIX

    # -- global indexes (outside every hash tag)
    def sites(self) -> str:
        """Set of every site id."""
        return f"{self.prefix}:sites"

    def api_key(self, api_key_hash: str) -> str:
        """String: site id, by sha256 of its api key."""
        return f"{self.prefix}:apikey:{api_key_hash}"

    def moderator_token(self, token_hash: str) -> str:
        """Hash {site, id, name, created_at}, by sha256 of the moderator's bearer token."""
        return f"{self.prefix}:token:{token_hash}"

    def purges(self) -> str:
        """Hash: deleted site id -> SCAN cursor of its purge (removed when the purge is done)."""
        return f"{self.prefix}:purges"

    def gauges(self) -> str:
        """Hash: site id -> JSON of its figures for /metrics (queue depths, refits, second look),
        kept current by the API processes so a scrape reads one key whatever the sites."""
        return f"{self.prefix}:gauges"

    def gauges_changed(self) -> str:
        """Set of site ids whose figures a write may have moved since the last scrape."""
        return f"{self.prefix}:gauges:changed"

    def idempotency(self, site: str | None, digest: str) -> str:
        """Hash {body_hash, state, status, answer, content_type, expires_at, running_until,
        authors}: a request sent with an Idempotency-Key, by sha256 of the principal, method,
        path and key; in the site's hash tag when the path names a site, else global. ``authors``
        (JSON list) names whose comments the answer carries, for their erasure."""
        if site is None:
            return f"{self.prefix}:idempotency:{digest}"
        return f"{self.site_prefix(site)}idempotency:{digest}"

    def model_reloads(self) -> str:
        """Pub/sub channel: an API process that reloaded the model tells the others to follow."""
        return f"{self.prefix}:model:reloads"

    def model_reloaded(self) -> str:
        """String: the model (``<name>-<version>``) the last reload announced, kept for the API
        processes that were not listening when it was published (one starting, or whose
        subscription was down) and for the refit process, which fits on what they serve."""
        return f"{self.prefix}:model:reloaded"

    def readiness(self, tag: str = "") -> str:
        """Never written: ``/readyz`` sets it only if it exists (``SET ... XX``), a write that
        changes nothing (so nothing reaches the replicas or the append-only file) and that Redis
        refuses as it would intake's while it takes no writes (a replica, at its maxmemory,
        unable to persist, short of replicas; a DEL, which frees memory, is taken at maxmemory).
        On a Cluster, one with a ``tag`` in a slot of each primary."""
        if tag:
            return f"{self.prefix}:readiness:{{{tag}}}"
        return f"{self.prefix}:readiness"

    # -- per site
    def site_prefix(self, site: str) -> str:
        """What every key of ``site`` starts with; the scripts build derived keys from it."""
        return f"{self.prefix}:{{{site}}}:"

    def site(self, site: str) -> str:
        """Hash: name, callback_url, policy (JSON), secrets, api key hash, timestamps; and the
        digest of the keyed request that created it, whose global idempotency record its
        deletion removes."""
        return f"{self.site_prefix(site)}site"

    def moderators(self, site: str) -> str:
        """Hash: moderator id -> JSON {id, site_id, name, created_at, token_hash}; a token counts
        only while its moderator is listed here."""
        return f"{self.site_prefix(site)}moderators"

    def moderators_last_used(self, site: str) -> str:
        """Hash: moderator id -> when (ms) the moderator's token last authenticated."""
        return f"{self.site_prefix(site)}moderators:last_used"

    def comment(self, site: str, comment_id: str) -> str:
        """Hash: the comment's fields (state, version, ``score:<label>``, reasons, ...)."""
        return f"{self.site_prefix(site)}comment:{comment_id}"

    def comment_text(self, site: str, comment_id: str) -> str:
        """String: the comment's text, kept out of its hash so the hash stays a compact listpack
        (a comment stored before that keeps a ``text`` field in its hash instead)."""
        return f"{self.site_prefix(site)}text:{comment_id}"

    def history(self, site: str, comment_id: str) -> str:
        """List: one JSON entry per change of the comment, oldest first."""
        return f"{self.site_prefix(site)}history:{comment_id}"

    def reports(self, site: str, comment_id: str) -> str:
        """Hash: reporter id -> JSON {reason, note, at}; one report per reader and comment."""
        return f"{self.site_prefix(site)}reports:{comment_id}"

    def lease(self, site: str, comment_id: str) -> str:
        """String with expiry: the moderator id holding the claim on the comment."""
        return f"{self.site_prefix(site)}lease:{comment_id}"

    def claims(self, site: str, moderator_id: str) -> str:
        """Sorted set: comment ids a moderator claimed, scored by lease end (ms)."""
        return f"{self.site_prefix(site)}claims:{moderator_id}"

    def queue_index(
        self,
        site: str,
        queue: Queue,
        order: Order,
        *,
        article: str | None = None,
        author: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Sorted set of comment ids in ``queue``: by risk (priority) or by when each entered the
        queue (oldest; one queued before that was kept: by its creation time); optionally
        restricted to one reason the comments carry, to one article or one author, or to one
        reason within one article or one author (the id comes last, after the reason)."""
        base = f"{self.site_prefix(site)}queue:{queue.value}:{order.value}"
        if reason is not None:
            base = f"{base}:reason:{reason}"
        if article is not None:
            return f"{base}:article:{article}"
        if author is not None:
            return f"{base}:author:{author}"
        return base

    def queue_scope(
        self,
        site: str,
        queue: Queue,
        order: Order,
        *,
        article: str | None = None,
        author: str | None = None,
        reason: str | None = None,
    ) -> list[str]:
        """The queue indexes a filter reads: its own, or with an article and an author both, the
        article's and the author's (of the reason, if any), whose intersection it lists; no index
        of an article and an author together is kept, so intake adds no index for it."""
        if article is not None and author is not None:
            return [
                self.queue_index(site, queue, order, article=article, reason=reason),
                self.queue_index(site, queue, order, author=author, reason=reason),
            ]
        return [self.queue_index(site, queue, order, article=article, author=author, reason=reason)]

    def comments(
        self, site: str, state: State, *, article: str | None = None, author: str | None = None
    ) -> str:
        """Sorted set of comment ids in ``state``, by the time of their last decision (ms);
        optionally restricted to one article or one author (the browse listing's index). A
        decided state's expires with the site's retention after its last change (not while a
        comment of it is in the reported queue) and loses expired comments as comments are filed
        into it (``file_state`` in service/lua/_lib.lua); a pending one never expires."""
        base = f"{self.site_prefix(site)}comments:{state.value}"
        if article is not None:
            return f"{base}:article:{article}"
        if author is not None:
            return f"{base}:author:{author}"
        return base

    def comments_scope(
        self, site: str, state: State, *, article: str | None = None, author: str | None = None
    ) -> list[str]:
        """The browse indexes a listing reads: its own, or with an article and an author both,
        the article's and the author's, whose intersection it lists (as ``queue_scope``)."""
        if article is not None and author is not None:
            return [
                self.comments(site, state, article=article),
                self.comments(site, state, author=author),
            ]
        return [self.comments(site, state, article=article, author=author)]

    def article(self, site: str, article_id: str) -> str:
        """Hash: url, title, closed, premod, updated_at."""
        return f"{self.site_prefix(site)}article:{article_id}"

    def author(self, site: str, author_id: str) -> str:
        """Hash: per-state comment counts, status, first_seen, last_seen."""
        return f"{self.site_prefix(site)}author:{author_id}"

    def erasure(self, site: str, author_id: str) -> str:
        """String with expiry: the author's erasure is running or ended within a request's
        lifetime, so what a request racing it still holds (a decision's answer or training
        label) is not written back (``service/admin_store.py``)."""
        return f"{self.site_prefix(site)}erasure:{author_id}"

    def ban_rejections(self, site: str, author_id: str) -> str:
        """List: the held comments the author's standing ban rejected, in the order it rejected
        them, across every call that set or repeated it; a new status ends it. A retry of the
        ban after a lost answer lists the first call's rejections from here."""
        return f"{self.site_prefix(site)}ban:rejected:{author_id}"

    def author_recent(self, site: str, author_id: str) -> str:
        """Sorted set with expiry: the author's decided comments within the site's recent window
        as ``a:<id>`` (approved) or ``r:<id>`` (rejected or spam), by decision time (ms); capped."""
        return f"{self.site_prefix(site)}recent:{author_id}"

    def author_flood(self, site: str, author_id: str) -> str:
        """String with expiry: the author's last comment id during the flood interval."""
        return f"{self.site_prefix(site)}flood:author:{author_id}"

    def ip_flood(self, site: str, ip: str) -> str:
        """String with expiry: the address's last comment id during the flood interval (gone
        when that comment's author is erased)."""
        return f"{self.site_prefix(site)}flood:ip:{ip}"

    def duplicate(self, site: str, author_id: str, text_hash: str) -> str:
        """String with expiry: the comment id that first carried this text from this author
        (gone when the author is erased)."""
        return f"{self.site_prefix(site)}duplicate:{text_hash}:{author_id}"

    def audit(self, site: str) -> str:
        """Stream: one entry per change, who and why, and per claim and release (approximately
        capped); the event stream of ``/v1/sites/{site}/events`` follows it."""
        return f"{self.site_prefix(site)}audit"

    def outbox(self, site: str) -> str:
        """Stream: one event per state change, for the webhook worker (never trimmed here)."""
        return f"{self.site_prefix(site)}outbox"

    def decided(self, site: str, event_id: str) -> str:
        """String with expiry (the idempotency window): the comment id a decision sent with an
        Idempotency-Key was made on, by its event id, so a retry finds it made even after the
        comment changed again."""
        return f"{self.site_prefix(site)}decided:{event_id}"

    def claimed(self, site: str, batch_id: str) -> str:
        """String with expiry (the idempotency window): JSON list of the comment ids a queue
        claim sent with an Idempotency-Key leased, by the batch id derived from its key, so a
        retry after a 503 that hid the claim answers that batch rather than leasing another."""
        return f"{self.site_prefix(site)}claimed:{batch_id}"

    def stats(self, site: str) -> str:
        """Hash: decision counters (auto, moderator)."""
        return f"{self.site_prefix(site)}stats"

    def hourly_stats(self, site: str, hour: str) -> str:
        """Hash with expiry: decision counters of one UTC hour (``YYYYMMDDHH``)."""
        return f"{self.site_prefix(site)}stats:hour:{hour}"

    # -- webhook deliveries (service/deliveries.py; the delivery scripts derive the record and
    # line keys from the site prefix exactly as named here)
    def delivery(self, site: str, event_id: str) -> str:
        """Hash: one outbox event's delivery record (event fields, state, attempts, lease)."""
        return f"{self.site_prefix(site)}delivery:{event_id}"

    def delivery_line(self, site: str, comment_id: str) -> str:
        """List: the comment's undelivered event ids in outbox order; only the head is sent."""
        return f"{self.site_prefix(site)}deliveries:line:{comment_id}"

    def deliveries_due(self, site: str) -> str:
        """Sorted set: line heads by when (ms) they may next be attempted or their lease ends."""
        return f"{self.site_prefix(site)}deliveries:due"

    def deliveries(self, site: str, state: str) -> str:
        """Sorted set of event ids in one delivery state (pending, delivered, failed), by time."""
        return f"{self.site_prefix(site)}deliveries:state:{state}"

    # -- training labels (service/labels.py)
    def labels(self, site: str) -> str:
        """Stream: one entry per label from feedback or decisions, capped at the newest N."""
        return f"{self.site_prefix(site)}labels"

    # -- Akismet's usage figures (service/compat/akismet_usage.py)
    def akismet_usage(self, site: str, month: str) -> str:
        """Hash with expiry: one UTC month's (``YYYY-MM``) Akismet calls of the site by outcome
        (api_calls, spam, ham, missed_spam, false_positives)."""
        return f"{self.site_prefix(site)}akismet:usage:{month}"

    # -- Coral Talk (service/compat/coral_links.py)
    def coral_link(self, site: str, comment_id: str) -> str:
        """Hash {coral_id, revision_id, ...}: the Coral comment (and the revision of the text
        civility moderated) a comment is, with what keeps the two in step (``CoralLink``)."""
        return f"{self.site_prefix(site)}coral:link:{comment_id}"

    def coral_comment(self, site: str, coral_id: str) -> str:
        """String: the comment id of a Coral comment id."""
        return f"{self.site_prefix(site)}coral:comment:{coral_id}"

    def coral_thread(self, site: str, thread_hash: str) -> str:
        """Sorted set with expiry: the comments an author wrote in one Coral thread (story and
        parent, hashed with the author) by when first seen, where a Coral EDIT without ids
        looks for the comment it edits."""
        return f"{self.site_prefix(site)}coral:thread:{thread_hash}"

    # -- the second look (service/second_look_store.py; second_look_apply.lua derives the
    # stats key from the site prefix exactly as named here)
    def second_look_queue(self, site: str) -> str:
        """Sorted set: comment ids the lexical verdict published and the semantic stage has
        still to read, by when (ms) they are due: queued at intake, pushed forward by a lease
        while a worker reads them, removed once looked at."""
        return f"{self.site_prefix(site)}secondlook:queue"

    def second_look_stats(self, site: str) -> str:
        """Hash: second-look counters (looked, held, skipped) and the delay from intake to the
        look (``delay_ms`` sum, ``le:<seconds>`` per histogram bucket, not cumulative)."""
        return f"{self.site_prefix(site)}secondlook:stats"

    # -- site models (service/site_models.py)
    def site_model_state(self, site: str) -> str:
        """Hash: active version, label cursor, labels since the last fit, the last fit's outcome
        (JSON), refit counters by outcome; and, for a site fitted before ``site_model_numbers``
        gave the numbers out, its last version number."""
        return f"{self.site_prefix(site)}sitemodel:state"

    def site_model(self, site: str, version: int) -> str:
        """String: one site model version as JSON (card and weights)."""
        return f"{self.site_prefix(site)}sitemodel:version:{version}"

    def site_model_history(self, site: str) -> str:
        """List: the site model versions kept, newest first (bounded)."""
        return f"{self.site_prefix(site)}sitemodel:history"

    def site_model_rows(self, site: str) -> str:
        """Hash: labelled comment (comment id, or label entry id) -> JSON row: labels, author,
        text, global scores and features, as a refit reads them."""
        return f"{self.site_prefix(site)}sitemodel:rows"

    def site_model_author_rows(self, site: str, author_id: str) -> str:
        """Set: the rows of one author, so erasing the author drops them from the next fit."""
        return f"{self.site_prefix(site)}sitemodel:author:{author_id}"

    def site_model_numbers(self) -> str:
        """Hash: site id -> the last site model version number it was given. Outside the site's
        keys, so deleting a site keeps it: a site created again under the same id numbers its
        versions on, and a scoring process, which keeps the versions it read by their number,
        never takes a new one for an old one."""
        return f"{self.prefix}:sitemodel:numbers"

    def site_models_refit(self) -> str:
        """Set of site ids waiting for a refit (a request, or enough new labels)."""
        return f"{self.prefix}:sitemodel:refit"
