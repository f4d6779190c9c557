"""notifications: e-mail and channel messages out, reply e-mails in."""
