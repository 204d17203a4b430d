"""Messages out: signed webhook POSTs and e-mail (SMTP, or the log)."""
