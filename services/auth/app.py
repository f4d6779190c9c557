"""auth's composition root."""

from contracts import operations
from contracts.events import IdentityLinked, UserRegistered
from services.auth import accounts, admin, custom_sign_on, email_access, signin, staff
from services.auth.caches import open_caches
from services.auth.sessions import open_buckets
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("auth", settings or Settings(), produces=(UserRegistered, IdentityLinked), **overrides)  # type: ignore[arg-type]
    service.on_start(open_caches)
    service.on_start(open_buckets)
    service.on_stop(email_access.send_delayed_answers)
    endpoints = {
        operations.auth.start_email_access: email_access.start_email_access,
        operations.auth.verify_email_code: email_access.verify_email_code,
        operations.auth.sso_login: signin.sso_login,
        operations.auth.anonymous_login: signin.anonymous_login,
        operations.auth.begin_custom_sign_on: custom_sign_on.begin,
        operations.auth.complete_custom_sign_on: custom_sign_on.complete,
        operations.auth.staff_login: signin.staff_login,
        operations.auth.logout: signin.logout,
        operations.auth.verify_api_key: admin.verify_api_key,
        operations.auth.get_portal: admin.get_portal,
        operations.auth.create_portal: admin.create_portal,
        operations.auth.update_portal_settings: admin.update_portal_settings,
        operations.auth.rotate_secret: admin.rotate_secret,
        operations.auth.revoke_secret: admin.revoke_secret,
        operations.auth.kb_settings: admin.kb_settings,
        operations.auth.create_api_key: admin.create_api_key,
        operations.auth.list_api_keys: admin.list_api_keys,
        operations.auth.revoke_api_key: admin.revoke_api_key,
        operations.auth.list_staff: staff.list_staff,
        operations.auth.create_staff: staff.create_staff,
        operations.auth.update_staff: staff.update_staff,
        operations.auth.ensure_customer: accounts.ensure_customer,
        operations.auth.portal_info: accounts.portal_info,
        operations.auth.list_portals: accounts.list_portals,
    }
    service.answer_all(endpoints)
    return service
