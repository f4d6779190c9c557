"""auth's composition root."""

from contracts import rpc
from contracts.events import IdentityLinked, UserRegistered
from services.auth import accounts, admin, custom_sign_on, handlers, signin
from services.auth.sessions import open_buckets
from services.runtime.service import Service
from services.runtime.settings import Settings


def build(settings: Settings | None = None, **overrides: object) -> Service:
    service = Service("auth", settings or Settings(), produces=(UserRegistered, IdentityLinked), **overrides)  # type: ignore[arg-type]
    service.on_start(open_buckets)
    endpoints = {
        "start_email_access": (rpc.StartEmailAccess, handlers.start_email_access),
        "verify_email_code": (rpc.VerifyEmailCode, handlers.verify_email_code),
        "sso_login": (rpc.SsoLogin, signin.sso_login),
        "anonymous_login": (rpc.AnonymousLogin, signin.anonymous_login),
        "begin_custom_sign_on": (rpc.BeginCustomSignOn, custom_sign_on.begin),
        "complete_custom_sign_on": (rpc.CompleteCustomSignOn, custom_sign_on.complete),
        "staff_login": (rpc.StaffLogin, signin.staff_login),
        "logout": (rpc.EndSession, signin.logout),
        "verify_api_key": (rpc.VerifyApiKey, admin.verify_api_key),
        "get_portal": (rpc.GetPortal, admin.get_portal),
        "create_portal": (rpc.CreatePortal, admin.create_portal),
        "update_portal_settings": (rpc.UpdatePortalSettings, admin.update_portal_settings),
        "rotate_secret": (rpc.RotateSecret, admin.rotate_secret),
        "revoke_secret": (rpc.RevokeSecret, admin.revoke_secret),
        "kb_settings": (rpc.KbSettings, admin.kb_settings),
        "create_api_key": (rpc.CreateApiKey, admin.create_api_key),
        "list_api_keys": (rpc.ListApiKeys, admin.list_api_keys),
        "revoke_api_key": (rpc.RevokeApiKey, admin.revoke_api_key),
        "list_staff": (rpc.ListStaff, admin.list_staff),
        "create_staff": (rpc.CreateStaff, admin.create_staff),
        "ensure_customer": (rpc.EnsureCustomer, accounts.ensure_customer),
        "portal_info": (rpc.GetPortalInfo, accounts.portal_info),
    }
    for operation, (request, handler) in endpoints.items():
        service.rpc(operation, request)(handler)
    return service
