"""kb: knowledge base articles, portal KB settings and themes."""
