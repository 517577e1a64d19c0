"""Who is asking: sessions after sign-in (OIDC or local demo), and API tokens."""

from portal.auth.identity import Identity

__all__ = ["Identity"]
