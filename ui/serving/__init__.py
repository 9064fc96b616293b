"""Serving the visitors: app-wide settings, sessions, people, run lifecycle, queue, errors, forms, the server's edge."""
