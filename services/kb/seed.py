"""The demo portal's knowledge base: every switch on, a few articles, public and internal."""

from datetime import UTC, datetime

from sqlmodel import Session, select

from contracts.envelope import new_id
from contracts.kb import ArticleInput
from services.kb.articles import _apply, _published
from services.kb.domain import slugify
from services.kb.models import Article, KbPortal

ARTICLES = [
    ("Reset your password", "account", "public",
     "Forgot your password? Open the sign-in page, choose **Forgot password** and follow the link we e-mail "
     "you. The link works for 30 minutes.\n\n1. Open the sign-in page\n2. Choose *Forgot password*\n"
     "3. Follow the link in the e-mail"),
    ("Change the e-mail address of your account", "account", "public",
     "Go to **Settings → Profile**, enter the new address and confirm it from the e-mail we send there."),
    ("Where is my invoice?", "billing", "public",
     "Invoices are in **Billing → Invoices** as PDF. Need a copy by e-mail? "
     "[Write to us](/portals/demo/conversations) and attach nothing: we find it from your account."),
    ("Refunds: how long do they take?", "billing", "public",
     "Refunds reach your card within 5 to 10 business days after we confirm them."),
    ("Internal: issuing a goodwill credit", "billing", "internal",
     "Agents may credit up to 20 EUR without approval. Add an internal note with the reason."),
]


def seed_demo(session: Session, *, portal: str, org_id: str, kb_id: str) -> None:
    now = datetime.now(UTC)
    row = session.get(KbPortal, portal)
    if row is None:
        row = KbPortal(slug=portal, org_id=org_id, kb_id=kb_id, updated_at=now)
    row.portal_for_agents = row.internal_kb = True
    session.add(row)
    session.flush()
    for title, category, visibility, body in ARTICLES:
        if session.exec(select(Article.id).where(Article.portal == portal, Article.title == title)).first():
            continue
        article = Article(id=new_id(), portal=portal, slug="", title="", body="", body_html="",
                          body_text="", visibility=visibility, status="published", locale="en", version=0,
                          created_at=now, updated_at=now, published_at=now)
        article.slug = slugify(title)
        _apply(session, article, ArticleInput(title=title, body=body, visibility=visibility,  # type: ignore[arg-type]
                                              category=category), "seed")
        _published(session, org_id, article)
