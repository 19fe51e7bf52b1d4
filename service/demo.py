"""A held queue for the development demo, so a newcomer has something to clear in the console.

The comments go through intake like any other, on a demo article set to pre-moderation: every
one is held (``PREMOD``) with its real scores and evidence, and no other article is affected.
"""

import time

from service.domain import ArticleSpec, Queue, QueueQuery, State, Submission
from service.moderation import Moderation

DEMO_ARTICLE = "demo-article"
DEMO_COMMENTS = (
    ("ann", "Ann", "Finally some progress. The old bridge was a real problem for cyclists."),
    ("bo", "Bo", "You are an idiot if you believe a word of this."),
    ("cy", "Cy", "Cheap watches and pills, best offer today only: http://deals.example/now"),
    ("di", "Di", "Does anyone know when the council votes on the budget?"),
    ("ed", "Ed", "People like you should shut up and leave this town."),
)


async def fill_demo_queue(moderation: Moderation, site_id: str) -> int:
    """Send the demo comments when the site's queue is empty; the number held (the model may
    reject the worst outright, as it would on a real site)."""
    page = await moderation.list_queue(site_id, QueueQuery(queue=Queue.PENDING, limit=1))
    if page.items:
        return 0
    spec = ArticleSpec(
        id=DEMO_ARTICLE,
        url="https://news.example/bridge",
        title="The new bridge opens",
        premod=True,
    )
    await moderation.put_article(site_id, DEMO_ARTICLE, spec)
    # A fresh id per filling: a resent id with the same text would answer its old verdict.
    batch = int(time.time())
    held = 0
    for number, (author, name, text) in enumerate(DEMO_COMMENTS):
        submission = Submission.model_validate(
            {
                "id": f"demo-{batch}-{number}",
                "article": {"id": DEMO_ARTICLE},
                "author": {"id": author, "name": name},
                "text": text,
            }
        )
        result = await moderation.ingest(site_id, submission)
        held += result.comment.state is State.PENDING
    return held
