"""The demo org and portal, seeded into a test's databases."""



EMAIL_PATH = "/api/v1/portals/demo/session/email"


def seed(settings) -> None:  # type: ignore[no-untyped-def]
    from services.auth.seed import seed_demo
    from services.runtime.db import make_engine, session_scope

    engine = make_engine(settings.database_url("auth"))
    with session_scope(engine) as session:
        seed_demo(session, api_key="pk_test_key_for_the_demo_org_0123456789", admin_password="a-long-admin-password")
    engine.dispose()
