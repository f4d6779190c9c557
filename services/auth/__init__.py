"""auth: organisations, portals, customers and staff, sign-in and sessions."""
