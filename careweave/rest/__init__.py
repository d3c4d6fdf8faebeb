"""The HTTP adapter: an ASGI application translating HTTP to and from interactions."""
